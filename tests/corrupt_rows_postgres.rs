//! Rows written behind the library's back, on PostgreSQL (feature `postgres`; needs
//! the server, see the README): the shared suite, the projection runner's policy for
//! unreadable rows, and stream names PostgreSQL cannot hold.

mod corrupt_rows;
mod pg;
mod support;

use es::postgres::PgStore;
use sqlx::AssertSqlSafe;

async fn new_store() -> PgStore {
    pg::fresh_store().await
}

async fn write_row(store: &PgStore, stream_type: &str, stream_id: &str, version: i64) {
    let (events, outbox) = (store.table("events"), store.table("outbox"));
    sqlx::query(AssertSqlSafe(format!(
        "WITH e AS (
             INSERT INTO {events} (event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, payload)
             VALUES ($1, $2, $3, $4, 'Deposited', 1, 0, '{{\"amount\":1}}') RETURNING position
         )
         INSERT INTO {outbox} (position, stream_type, stream_id) SELECT position, $2, $3 FROM e"
    )))
    .bind(uuid::Uuid::now_v7())
    .bind(stream_type)
    .bind(stream_id)
    .bind(version)
    .execute(store.pool())
    .await
    .unwrap();
}

async fn break_metadata(store: &PgStore, stream_id: &str, version: i64) {
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET metadata = '{{not json' WHERE stream_type = 'Account' AND stream_id = $1 AND stream_version = $2",
        store.table("events")
    )))
    .bind(stream_id)
    .bind(version)
    .execute(store.pool())
    .await
    .unwrap();
}

async fn write_snapshot_row(store: &PgStore, stream_id: &str, version: i64, state: &str) {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {} (stream_type, stream_id, stream_version, schema_version, state, taken_at)
         VALUES ('SnapshottedAccount', $1, $2, 2, $3, 0)",
        store.table("snapshots")
    )))
    .bind(stream_id)
    .bind(version)
    .bind(state)
    .execute(store.pool())
    .await
    .unwrap();
}

async fn count_rows(store: &PgStore, stream_id: &str) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {} WHERE stream_id = $1", store.table("events"))))
        .bind(stream_id)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

corrupt_rows_suite!();

mod projections {
    use super::{new_store, write_row};
    use es::postgres::{PgStore, Projection, ProjectionRunner};
    use es::projection::{HandlerError, OnError, ProjectionReport};
    use es::{EventStore, ExpectedVersion, IdSource, Metadata, NewEvent, RandomIds, StoredEvent, Timestamp};
    use sqlx::{AssertSqlSafe, PgConnection};

    struct Seen {
        table: String,
    }

    impl Projection for Seen {
        fn name(&self) -> &'static str {
            "seen"
        }
        async fn setup(&mut self, tx: &mut PgConnection) -> Result<(), HandlerError> {
            sqlx::query(AssertSqlSafe(format!("CREATE TABLE IF NOT EXISTS {} (n SERIAL, stream_id TEXT)", self.table)))
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        async fn handle(&mut self, tx: &mut PgConnection, event: &StoredEvent) -> Result<(), HandlerError> {
            sqlx::query(AssertSqlSafe(format!("INSERT INTO {} (stream_id) VALUES ($1)", self.table)))
                .bind(&event.stream_id)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        async fn reset(&mut self, tx: &mut PgConnection) -> Result<(), HandlerError> {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {}", self.table))).execute(&mut *tx).await?;
            Ok(())
        }
    }

    fn deposit() -> Vec<NewEvent> {
        let event = crate::support::AccountEvent::Deposited { amount: 1 };
        vec![NewEvent::encode(&event, RandomIds.next_id(), Timestamp::EPOCH, Metadata::default()).unwrap()]
    }

    /// Catches up until `rows` rows were applied or skipped: the log may hold back
    /// rows while transactions of other tests run.
    async fn catch_up_to(runner: &mut ProjectionRunner<Seen>, rows: u64) -> ProjectionReport {
        let mut total = ProjectionReport::default();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while total.applied + total.skipped < rows {
            assert!(std::time::Instant::now() < deadline, "the projection never saw {rows} rows: {total:?}");
            let report = runner.catch_up().await.unwrap();
            total.applied += report.applied;
            total.skipped += report.skipped;
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        total
    }

    fn seen(store: &PgStore) -> Seen {
        Seen { table: store.table("seen") }
    }

    #[tokio::test]
    async fn a_projection_records_and_skips_a_row_below_version_one_and_goes_on() {
        for version in [0, -1] {
            let store = new_store().await;
            store.append("Account", "before", ExpectedVersion::NoStream, deposit()).await.unwrap();
            write_row(&store, "Account", "bad", version).await;
            store.append("Account", "after", ExpectedVersion::NoStream, deposit()).await.unwrap();
            let mut runner = ProjectionRunner::new(store.clone(), seen(&store)).on_error(OnError::RecordAndSkip);
            let report = catch_up_to(&mut runner, 3).await;
            assert_eq!((report.applied, report.skipped), (2, 1));
            let streams: Vec<String> =
                sqlx::query_scalar(AssertSqlSafe(format!("SELECT stream_id FROM {} ORDER BY n", store.table("seen"))))
                    .fetch_all(store.pool())
                    .await
                    .unwrap();
            assert_eq!(streams, ["before", "after"]);
            let reason: String =
                sqlx::query_scalar(AssertSqlSafe(format!("SELECT reason FROM {}", store.table("skipped"))))
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
            assert!(reason.contains(&format!("version {version}")), "{reason}");
            // The checkpoint moved past the bad row: the next pass does not fail on it.
            let again = runner.catch_up().await.unwrap();
            assert_eq!((again.applied, again.skipped), (0, 0));
        }
    }
}

mod stream_names {
    use super::new_store;
    use es::{EventStore, ExpectedVersion, IdSource, Metadata, NewEvent, RandomIds, Repository, StoreError, Timestamp};

    #[tokio::test]
    async fn a_stream_id_postgres_cannot_index_is_unstorable_before_the_server_is_asked() {
        let store = new_store().await;
        let long = "x".repeat(10_000);
        let event = crate::support::AccountEvent::Deposited { amount: 1 };
        let events =
            vec![NewEvent::encode(&event, RandomIds.next_id(), Timestamp::EPOCH, Metadata::default()).unwrap()];
        let error = store.append("Account", &long, ExpectedVersion::Any, events).await.unwrap_err();
        assert!(matches!(error, StoreError::Unstorable { .. }), "{error:?}");
        let repository = Repository::new(store.clone());
        let outcome = repository
            .execute::<crate::support::Account, std::convert::Infallible, _, _>(&long, |_, _| {
                Ok(vec![crate::support::AccountEvent::Deposited { amount: 1 }])
            })
            .await;
        assert!(matches!(outcome, Err(es::CommandError::Store(StoreError::Unstorable { .. }))), "{outcome:?}");
    }
}
