//! The read-model suite against the in-memory store.

mod read_models;

async fn new_store() -> es::MemoryStore {
    es::MemoryStore::new()
}

read_model_suite!(es::memory::ProjectionRunner);

async fn clean_up(_: &es::MemoryStore) {}
