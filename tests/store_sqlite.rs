//! The store conformance suite against the SQLite store.

mod conformance;
mod support;

async fn new_store() -> es::sqlite::SqliteStore {
    // Each store gets its own directory, kept for the life of the test process.
    let dir = tempfile::tempdir().unwrap().keep();
    es::sqlite::SqliteStore::open(dir.join("events.db")).await.unwrap()
}

conformance_suite!();
