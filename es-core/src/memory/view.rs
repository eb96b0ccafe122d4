//! Views in the in-memory store: documents kept beside the events.

use super::{MemoryStore, MemoryTransaction, Projection, ProjectionRunner};
use crate::projection::{HandlerError, ProjectionError, ProjectionReport, View, ViewBackend, ViewProjection};
use crate::store::{StoreError, StoredEvent};

impl<V: View> Projection for ViewProjection<V> {
    fn name(&self) -> &str {
        ViewProjection::name(self)
    }

    fn handle(&mut self, tx: &mut MemoryTransaction<'_>, event: &StoredEvent) -> Result<(), HandlerError> {
        let Some(update) = self.route(event)? else { return Ok(()) };
        let key = update.key.clone();
        let document = self.updated(update, tx.view_document(self.view_name(), &key))?;
        let view = self.view_name().to_owned();
        tx.put_view_document(&view, key, document);
        Ok(())
    }

    fn reset(&mut self, tx: &mut MemoryTransaction<'_>) -> Result<(), HandlerError> {
        tx.clear_view(self.view_name());
        Ok(())
    }
}

impl ViewBackend for MemoryStore {
    fn views_table(&self) -> String {
        String::new()
    }

    async fn read_view_document(&self, view: &str, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().views.get(&(view.to_owned(), key.to_owned())).cloned())
    }

    async fn catch_up_view<V: View>(&self, projection: ViewProjection<V>) -> Result<ProjectionReport, ProjectionError> {
        ProjectionRunner::new(self.clone(), projection).catch_up().await
    }

    async fn rebuild_view<V: View>(&self, projection: ViewProjection<V>) -> Result<(), ProjectionError> {
        ProjectionRunner::new(self.clone(), projection).rebuild().await
    }
}
