//! The store conformance suite against PostgreSQL (feature `postgres`; needs the
//! server, see the README).

mod conformance;
mod pg;
mod support;

async fn new_store() -> es::postgres::PgStore {
    pg::fresh_store().await
}

conformance_suite!();

/// `TABLE_NAMES` names every table the store creates: dropping them leaves none.
#[tokio::test]
async fn the_table_names_cover_every_table_of_the_store() {
    let store = pg::fresh_store().await;
    let prefix = store.table("");
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM pg_tables WHERE left(tablename, length($1)) = $1")
            .bind(&prefix)
            .fetch_one(store.pool())
            .await
            .unwrap()
    };
    assert_eq!(usize::try_from(count().await).unwrap(), es::postgres::TABLE_NAMES.len());
    pg::drop_tables(&store).await;
    assert_eq!(count().await, 0);
}
