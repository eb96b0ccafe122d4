//! Views in PostgreSQL: one table of JSON documents, written in the projection's
//! transaction.

use sqlx::{AssertSqlSafe, PgConnection};

use super::{PgStore, ProjectionRunner, backend};
use crate::clock::now_micros;
use crate::projection::{HandlerError, ProjectionError, ProjectionReport, View, ViewBackend, ViewProjection};
use crate::store::{StoreError, StoredEvent};

impl<V: View> super::Projection for ViewProjection<V> {
    fn name(&self) -> &str {
        ViewProjection::name(self)
    }

    async fn handle(&mut self, tx: &mut PgConnection, event: &StoredEvent) -> Result<(), HandlerError> {
        let Some(update) = self.route(event)? else { return Ok(()) };
        let key = update.key.clone();
        let stored: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT document FROM {} WHERE view = $1 AND key = $2",
            self.table()
        )))
        .bind(self.view_name())
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        let document = self.updated(update, stored.as_deref())?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {} (view, key, document, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (view, key) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
            self.table()
        )))
        .bind(self.view_name())
        .bind(&key)
        .bind(document)
        .bind(now_micros())
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn reset(&mut self, tx: &mut PgConnection) -> Result<(), HandlerError> {
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {} WHERE view = $1", self.table())))
            .bind(self.view_name())
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

impl ViewBackend for PgStore {
    fn views_table(&self) -> String {
        self.sql.views.clone()
    }

    async fn read_view_document(&self, view: &str, key: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT document FROM {} WHERE view = $1 AND key = $2",
            self.sql.views
        )))
        .bind(view)
        .bind(key)
        .fetch_optional(self.pool())
        .await
        .map_err(backend)
    }

    async fn catch_up_view<V: View>(&self, projection: ViewProjection<V>) -> Result<ProjectionReport, ProjectionError> {
        ProjectionRunner::new(self.clone(), projection).catch_up().await
    }

    async fn rebuild_view<V: View>(&self, projection: ViewProjection<V>) -> Result<(), ProjectionError> {
        ProjectionRunner::new(self.clone(), projection).rebuild().await
    }
}
