//! Projections on PostgreSQL: a pass applies a batch in one transaction with its
//! checkpoint; under `Stop` a failing handler leaves what came before it committed
//! (also on the very first pass, whose setup is rolled back with the failure) and
//! nothing after; under `RecordAndSkip` only the failing event's writes are undone.

mod pg;
mod support;

use es::postgres::sqlx; // the version the store is built with
use es::postgres::{PgStore, Projection, ProjectionRunner};
use es::projection::{HandlerError, OnError, ProjectionError};
use es::{EventStore, ExpectedVersion, IdSource, Metadata, NewEvent, RandomIds, StoredEvent, Timestamp};
use sqlx::{AssertSqlSafe, PgConnection};
use support::{Account, AccountEvent};

/// Balances per account; refuses a deposit of 13 after writing it.
struct Balances {
    table: String,
}

impl Projection for Balances {
    fn name(&self) -> &'static str {
        "balances"
    }

    async fn setup(&mut self, tx: &mut PgConnection) -> Result<(), HandlerError> {
        let sql =
            format!("CREATE TABLE IF NOT EXISTS {} (account TEXT PRIMARY KEY, balance BIGINT NOT NULL)", self.table);
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
        Ok(())
    }

    async fn handle(&mut self, tx: &mut PgConnection, event: &StoredEvent) -> Result<(), HandlerError> {
        // Typed, and only for accounts: other stream types are not even decoded.
        let Some(recorded) = event.decode_for::<Account>()? else { return Ok(()) };
        let AccountEvent::Deposited { amount } = recorded.event() else { return Ok(()) };
        let sql = format!(
            "INSERT INTO {table} VALUES ($1, $2) ON CONFLICT (account) DO UPDATE SET balance = {table}.balance + $2",
            table = self.table
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(recorded.stream_id())
            .bind(i64::try_from(*amount)?)
            .execute(&mut *tx)
            .await?;
        if *amount == 13 {
            return Err(HandlerError::new("13 is not accepted here"));
        }
        Ok(())
    }

    async fn reset(&mut self, tx: &mut PgConnection) -> Result<(), HandlerError> {
        sqlx::raw_sql(AssertSqlSafe(format!("DELETE FROM {}", self.table))).execute(&mut *tx).await?;
        Ok(())
    }
}

fn deposits(amounts: &[u64]) -> Vec<NewEvent> {
    amounts
        .iter()
        .map(|&amount| {
            NewEvent::encode(
                &AccountEvent::Deposited { amount },
                RandomIds.next_id(),
                Timestamp::EPOCH,
                Metadata::default(),
            )
            .unwrap()
        })
        .collect()
}

async fn balances(store: &PgStore, table: &str) -> Vec<(String, i64)> {
    let sql = format!("SELECT account, balance FROM {table} ORDER BY account");
    sqlx::query_as(AssertSqlSafe(sql)).fetch_all(store.pool()).await.unwrap_or_default()
}

async fn drop_read_model(store: &PgStore, table: &str) {
    sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}"))).execute(store.pool()).await.unwrap();
}

#[tokio::test]
async fn under_stop_the_first_pass_commits_what_came_before_the_failure_and_nothing_after() {
    let store = pg::fresh_store().await;
    let table = store.table("balances");
    store.append("Account", "a", ExpectedVersion::NoStream, deposits(&[1, 2, 13, 4])).await.unwrap();
    store.append("Account", "b", ExpectedVersion::NoStream, deposits(&[10])).await.unwrap();
    let mut runner = ProjectionRunner::new(store.clone(), Balances { table: table.clone() });
    // One pass, the first: its setup and everything else roll back with the failure,
    // then the events before the failing one are applied again and committed.
    let error = runner.run_once().await.unwrap_err();
    assert!(matches!(&error, ProjectionError::Event { version: 3, .. }), "{error}");
    assert_eq!(balances(&store, &table).await, vec![("a".to_owned(), 3)]);
    assert_eq!(runner.checkpoint().await.unwrap().unwrap().cursor.position, 2);
    assert_eq!(runner.lag().await.unwrap(), 3);
    // It stops there every time, and nothing after it is applied.
    assert!(runner.run_once().await.is_err());
    assert_eq!(balances(&store, &table).await, vec![("a".to_owned(), 3)]);
    drop_read_model(&store, &table).await;
    pg::drop_tables(&store).await;
}

#[tokio::test]
async fn a_deleted_checkpoint_rebuilds_the_read_model_from_the_first_event() {
    use es::admin::Admin;
    let store = pg::fresh_store().await;
    let table = store.table("balances");
    store.append("Account", "a", ExpectedVersion::NoStream, deposits(&[1, 2])).await.unwrap();
    let mut runner = ProjectionRunner::new(store.clone(), Balances { table: table.clone() });
    runner.catch_up().await.unwrap();
    assert_eq!(balances(&store, &table).await, vec![("a".to_owned(), 3)]);
    // What `es projections reset` does, while the runner lives on: only the
    // checkpoint goes.
    assert!(store.reset_projection("balances").await.unwrap());
    store.append("Account", "a", ExpectedVersion::Exact(2), deposits(&[4])).await.unwrap();
    let report = runner.catch_up().await.unwrap();
    assert_eq!(report.applied, 3);
    // Emptied first, then every event once: not 3 + 7.
    assert_eq!(balances(&store, &table).await, vec![("a".to_owned(), 7)]);
    drop_read_model(&store, &table).await;
    pg::drop_tables(&store).await;
}

#[tokio::test]
async fn record_and_skip_undoes_only_the_failing_events_writes_and_goes_on() {
    let store = pg::fresh_store().await;
    let table = store.table("balances");
    store.append("Account", "a", ExpectedVersion::NoStream, deposits(&[1, 2, 13, 4])).await.unwrap();
    store.append("Account", "b", ExpectedVersion::NoStream, deposits(&[10])).await.unwrap();
    let mut runner =
        ProjectionRunner::new(store.clone(), Balances { table: table.clone() }).on_error(OnError::RecordAndSkip);
    let report = runner.catch_up().await.unwrap();
    assert_eq!((report.applied, report.skipped), (4, 1));
    assert_eq!(balances(&store, &table).await, vec![("a".to_owned(), 7), ("b".to_owned(), 10)]);
    assert_eq!(runner.lag().await.unwrap(), 0);
    drop_read_model(&store, &table).await;
    pg::drop_tables(&store).await;
}

#[tokio::test]
async fn a_version_gap_inside_one_batch_stops_the_projection_at_it() {
    let store = pg::fresh_store().await;
    let table = store.table("balances");
    store.append("Account", "a", ExpectedVersion::NoStream, deposits(&[1, 2, 3])).await.unwrap();
    // Behind the library's back: version 2 disappears.
    let sql = format!(
        "DELETE FROM {} WHERE position IN (SELECT position FROM {} WHERE stream_id = 'a' AND stream_version = 2)",
        store.table("outbox"),
        store.table("events")
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(store.pool()).await.unwrap();
    let sql = format!("DELETE FROM {} WHERE stream_id = 'a' AND stream_version = 2", store.table("events"));
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(store.pool()).await.unwrap();
    let mut runner = ProjectionRunner::new(store.clone(), Balances { table: table.clone() });
    let error = runner.catch_up().await.unwrap_err();
    assert!(error.to_string().contains("expected version 2, got 3"), "{error}");
    assert_eq!(balances(&store, &table).await, vec![("a".to_owned(), 1)]);
    drop_read_model(&store, &table).await;
    pg::drop_tables(&store).await;
}
