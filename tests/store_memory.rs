//! The store conformance suite against the in-memory store.

mod conformance;
mod support;

async fn new_store() -> es::MemoryStore {
    es::MemoryStore::new()
}

conformance_suite!();
