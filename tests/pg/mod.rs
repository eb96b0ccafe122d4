//! Connecting the PostgreSQL suites to the test server.

#![allow(dead_code, reason = "each test crate uses a different part")]

use es::postgres::{PgOptions, PgStore};

/// The server the suites use: `ES_TEST_DATABASE_URL`, or the local one.
pub fn url() -> String {
    std::env::var("ES_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A table prefix no other test (or earlier run) uses.
pub fn unique_prefix() -> String {
    // The last 16 hex digits of a UUID v7 are random.
    format!("t{}_", &uuid::Uuid::now_v7().simple().to_string()[16..])
}

/// A pool on the test server; a clear panic when it cannot be reached, since these
/// suites run only when a server was promised.
pub async fn pool(max_connections: u32) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new().max_connections(max_connections).connect(&url()).await.unwrap_or_else(
        |error| panic!("cannot reach PostgreSQL at {}: {error}; start it or set ES_TEST_DATABASE_URL", url()),
    )
}

/// A store with tables of its own.
pub async fn fresh_store() -> PgStore {
    store_with_prefix(&unique_prefix()).await
}

/// A store on the given table prefix (created if missing).
pub async fn store_with_prefix(prefix: &str) -> PgStore {
    PgOptions::with_pool(pool(8).await).table_prefix(prefix).open().await.unwrap()
}

/// Drops the tables of a store, after a test that passed.
pub async fn drop_tables(store: &PgStore) {
    for table in es::postgres::TABLE_NAMES {
        let sql = format!("DROP TABLE IF EXISTS {} CASCADE", store.table(table));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(store.pool()).await.unwrap();
    }
}
