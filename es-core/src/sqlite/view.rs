//! Views in SQLite: one table of JSON documents, written in the projection's
//! transaction.

use rusqlite::{Connection, OptionalExtension, params};

use super::{ProjectionRunner, SqliteStore, backend, now_micros};
use crate::projection::{HandlerError, ProjectionError, ProjectionReport, View, ViewBackend, ViewProjection};
use crate::store::{StoreError, StoredEvent};

impl<V: View> super::Projection for ViewProjection<V> {
    fn name(&self) -> &str {
        ViewProjection::name(self)
    }

    fn handle(&mut self, tx: &Connection, event: &StoredEvent) -> Result<(), HandlerError> {
        let Some(update) = self.route(event)? else { return Ok(()) };
        let key = update.key.clone();
        let stored: Option<String> = tx
            .prepare_cached(&format!("SELECT document FROM {} WHERE view = ?1 AND key = ?2", self.table()))?
            .query_row(params![self.view_name(), key], |row| row.get(0))
            .optional()?;
        let document = self.updated(update, stored.as_deref())?;
        tx.prepare_cached(&format!(
            "INSERT INTO {} (view, key, document, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (view, key) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
            self.table()
        ))?
        .execute(params![self.view_name(), key, document, now_micros()])?;
        Ok(())
    }

    fn reset(&mut self, tx: &Connection) -> Result<(), HandlerError> {
        tx.execute(&format!("DELETE FROM {} WHERE view = ?1", self.table()), [self.view_name()])?;
        Ok(())
    }
}

impl ViewBackend for SqliteStore {
    fn views_table(&self) -> String {
        self.shared.tables.views.clone()
    }

    async fn read_view_document(&self, view: &str, key: &str) -> Result<Option<String>, StoreError> {
        let (view, key) = (view.to_owned(), key.to_owned());
        self.read_with_tables(move |connection, tables| {
            let document: Option<rusqlite::Result<String>> = connection
                .prepare_cached(&format!("SELECT document FROM {} WHERE view = ?1 AND key = ?2", tables.views))
                .and_then(|mut statement| statement.query_row(params![view, key], |row| Ok(row.get(0))).optional())
                .map_err(backend)?;
            document.transpose().map_err(|error| StoreError::Corrupt {
                location: format!("view {view}, key {key}"),
                reason: error.to_string(),
            })
        })
        .await
    }

    async fn catch_up_view<V: View>(&self, projection: ViewProjection<V>) -> Result<ProjectionReport, ProjectionError> {
        ProjectionRunner::new(self.clone(), projection).catch_up().await
    }

    async fn rebuild_view<V: View>(&self, projection: ViewProjection<V>) -> Result<(), ProjectionError> {
        ProjectionRunner::new(self.clone(), projection).rebuild().await
    }
}
