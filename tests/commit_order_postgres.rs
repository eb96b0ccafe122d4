//! PostgreSQL hands out positions before commit: a transaction that took an early
//! position can commit after later ones. Readers of the global log must never skip
//! it. These tests hold a transaction open while others commit and prove that
//! nothing is skipped, and that per-stream order survives writers that started early.

mod pg;
mod support;

use std::time::Duration;

use es::postgres::{PgStore, Projection, ProjectionRunner};
use es::projection::HandlerError;
use es::{
    Cursor, EventStore, ExpectedVersion, IdSource, Metadata, NewEvent, RandomIds, StoreError, StoredEvent, Timestamp,
};
use sqlx::PgConnection;
use support::AccountEvent;

fn deposit(amount: u64) -> Vec<NewEvent> {
    vec![
        NewEvent::encode(
            &AccountEvent::Deposited { amount },
            RandomIds.next_id(),
            Timestamp::EPOCH,
            Metadata::default(),
        )
        .unwrap(),
    ]
}

/// Reads the global log until it holds `n` events. Other transactions on the server
/// (other tests, here) may hold the newest events back for a moment.
async fn read_until(store: &PgStore, n: usize) -> Vec<StoredEvent> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let all = read_everything(store).await;
        if all.len() >= n || std::time::Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the projection until it applied `n` events in all (or failed).
async fn apply_until<P: Projection>(
    runner: &mut ProjectionRunner<P>,
    n: u64,
) -> Result<u64, es::projection::ProjectionError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut applied = 0;
    loop {
        let report = runner.catch_up().await?;
        applied += report.applied + report.skipped;
        if applied >= n || std::time::Instant::now() > deadline {
            return Ok(applied);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn read_everything(store: &PgStore) -> Vec<StoredEvent> {
    let mut cursor = Cursor::START;
    let mut all = Vec::new();
    loop {
        let page = store.read_all(cursor, 100).await.unwrap();
        let Some(last) = page.last() else { return all };
        cursor = last.cursor;
        all.extend(page);
    }
}

/// Records the amounts it sees, in order, in a table keyed by event id (a repeat
/// would violate the key).
struct Seen {
    table: String,
}

impl Seen {
    fn new(store: &PgStore) -> Self {
        Self { table: store.table("seen") }
    }
}

impl Projection for Seen {
    fn name(&self) -> &'static str {
        "seen"
    }

    async fn setup(&mut self, tx: &mut PgConnection) -> Result<(), HandlerError> {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} (event_id UUID PRIMARY KEY, n BIGSERIAL, amount BIGINT NOT NULL)",
            self.table
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(tx).await?;
        Ok(())
    }

    async fn handle(&mut self, tx: &mut PgConnection, event: &StoredEvent) -> Result<(), HandlerError> {
        let recorded = event.decode_ref::<AccountEvent>()?;
        if let AccountEvent::Deposited { amount } = recorded.event() {
            if *amount == 13 {
                return Err(HandlerError::new("13 is not accepted here"));
            }
            sqlx::query(sqlx::AssertSqlSafe(format!("INSERT INTO {} (event_id, amount) VALUES ($1, $2)", self.table)))
                .bind(recorded.event_id())
                .bind(i64::try_from(*amount)?)
                .execute(tx)
                .await?;
        }
        Ok(())
    }

    async fn reset(&mut self, tx: &mut PgConnection) -> Result<(), HandlerError> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DELETE FROM {}", self.table))).execute(tx).await?;
        Ok(())
    }
}

async fn seen_amounts(store: &PgStore) -> Vec<i64> {
    let sql = format!("SELECT amount FROM {} ORDER BY n", store.table("seen"));
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(store.pool()).await.unwrap()
}

async fn drop_seen(store: &PgStore) {
    let sql = format!("DROP TABLE IF EXISTS {}", store.table("seen"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(store.pool()).await.unwrap();
}

#[tokio::test]
async fn an_event_committed_late_at_an_early_position_is_never_skipped() {
    let store = pg::fresh_store().await;
    // The late transaction takes the first position and stays open.
    let mut late = store.pool().begin().await.unwrap();
    let early = store.append_in(&mut late, "Account", "slow", ExpectedVersion::NoStream, deposit(1)).await.unwrap();
    // Others append after it and commit.
    let b = store.append("Account", "fast-1", ExpectedVersion::NoStream, deposit(2)).await.unwrap();
    let c = store.append("Account", "fast-2", ExpectedVersion::NoStream, deposit(3)).await.unwrap();
    assert!(early.cursors[0].position < b.cursors[0].position && b.cursors[0].position < c.cursors[0].position);

    // A reader that went by positions alone would now read 2 and 3 and later skip 1.
    // Ours holds them back while the older transaction is running.
    assert!(read_everything(&store).await.is_empty(), "events after a running transaction were read too early");

    late.commit().await.unwrap();
    let all = read_until(&store, 3).await;
    let amounts: Vec<&str> = all.iter().map(|e| e.payload.as_str()).collect();
    assert_eq!(amounts, [r#"{"amount":1}"#, r#"{"amount":2}"#, r#"{"amount":3}"#]);
    pg::drop_tables(&store).await;
}

#[tokio::test]
async fn a_live_subscription_never_skips_a_late_commit() {
    use futures_util::StreamExt;
    let store = pg::fresh_store().await;
    // Other tests' open transactions can hold events back on this server; the poll
    // reads them once those end.
    let mut events =
        std::pin::pin!(es::subscription::subscribe(&store, Cursor::START).poll_interval(Duration::from_millis(100)));
    store.append("Account", "a", ExpectedVersion::NoStream, deposit(1)).await.unwrap();
    // The history/live hand-over.
    let first = tokio::time::timeout(Duration::from_secs(10), events.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.payload, r#"{"amount":1}"#);
    let mut late = store.pool().begin().await.unwrap();
    store.append_in(&mut late, "Account", "slow", ExpectedVersion::NoStream, deposit(2)).await.unwrap();
    store.append("Account", "fast", ExpectedVersion::NoStream, deposit(3)).await.unwrap();
    // The committed event after the running transaction is held back, not delivered past it.
    assert!(tokio::time::timeout(Duration::from_millis(300), events.next()).await.is_err());
    late.commit().await.unwrap();
    let mut amounts = Vec::new();
    for _ in 0..2 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next()).await.unwrap().unwrap().unwrap();
        amounts.push(event.payload);
    }
    assert_eq!(amounts, [r#"{"amount":2}"#, r#"{"amount":3}"#]);
    pg::drop_tables(&store).await;
}

#[tokio::test]
async fn a_projection_waits_for_a_long_transaction_and_then_applies_everything_once() {
    let store = pg::fresh_store().await;
    store.append("Account", "a", ExpectedVersion::NoStream, deposit(10)).await.unwrap();
    let mut runner = ProjectionRunner::new(store.clone(), Seen::new(&store));
    assert_eq!(apply_until(&mut runner, 1).await.unwrap(), 1);

    let mut late = store.pool().begin().await.unwrap();
    store.append_in(&mut late, "Account", "slow", ExpectedVersion::NoStream, deposit(20)).await.unwrap();
    for amount in [30, 40] {
        store.append("Account", &format!("s{amount}"), ExpectedVersion::NoStream, deposit(amount)).await.unwrap();
    }
    // While the transaction runs, nothing after it is applied...
    assert_eq!(runner.catch_up().await.unwrap().applied, 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(runner.catch_up().await.unwrap().applied, 0);
    // The committed events after the checkpoint count as lag; the running
    // transaction's does not, yet.
    assert_eq!(runner.lag().await.unwrap(), 2);
    // ...and once it commits, everything is, in commit-safe order, once.
    late.commit().await.unwrap();
    assert_eq!(runner.lag().await.unwrap(), 3);
    assert_eq!(apply_until(&mut runner, 3).await.unwrap(), 3);
    assert_eq!(runner.lag().await.unwrap(), 0);
    assert_eq!(seen_amounts(&store).await, vec![10, 20, 30, 40]);
    // A restarted runner has nothing left to do.
    assert_eq!(ProjectionRunner::new(store.clone(), Seen::new(&store)).catch_up().await.unwrap().applied, 0);
    drop_seen(&store).await;
    pg::drop_tables(&store).await;
}

#[tokio::test]
async fn a_writer_that_started_before_the_last_append_of_a_stream_is_ordered_after_it() {
    let store = pg::fresh_store().await;
    // This transaction writes first (and so takes its transaction id) ...
    let mut early = store.pool().begin().await.unwrap();
    let early_id: String =
        sqlx::query_scalar("SELECT pg_current_xact_id()::text").fetch_one(&mut *early).await.unwrap();
    // ... then another one appends version 1 and commits ...
    let first = store.append("Account", "s", ExpectedVersion::NoStream, deposit(1)).await.unwrap();
    // ... and the older transaction appends version 2: its events take a commit-order
    // key from after its append lock, not its older transaction id, so version 2
    // follows version 1 in the global log.
    let second = store.append_in(&mut early, "Account", "s", ExpectedVersion::Exact(1), deposit(2)).await.unwrap();
    assert!(second.cursors[0].commit > early_id.parse::<u64>().unwrap(), "the key is newer than the transaction id");
    assert!(second.cursors[0] > first.cursors[0], "{:?} after {:?}", second.cursors[0], first.cursors[0]);
    early.commit().await.unwrap();
    let all = read_until(&store, 2).await;
    assert_eq!(all.iter().map(|e| e.stream_version).collect::<Vec<_>>(), vec![1, 2]);
    pg::drop_tables(&store).await;
}

#[tokio::test]
async fn an_append_from_a_transaction_that_wrote_first_is_never_skipped_by_a_reader_that_moved_on() {
    for isolation in ["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"] {
        let store = pg::fresh_store().await;
        // The writer takes its transaction id before it appends, and holds no append
        // lock yet: readers rightly do not wait for it ...
        let mut writer = store.pool().begin().await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET TRANSACTION ISOLATION LEVEL {isolation}")))
            .execute(&mut *writer)
            .await
            .unwrap();
        sqlx::query("SELECT pg_current_xact_id()").execute(&mut *writer).await.unwrap();
        // ... so a younger transaction's event is read, and the reader's cursor moves
        // past the writer's transaction id.
        store.append("Account", "younger", ExpectedVersion::NoStream, deposit(1)).await.unwrap();
        let read = read_until(&store, 1).await;
        assert_eq!(read.len(), 1, "{isolation}: an unrelated open transaction held the reader back");
        let cursor = read[0].cursor;
        // Now the writer appends (twice) and commits: its events must still come after
        // the cursor.
        store.append_in(&mut writer, "Account", "older", ExpectedVersion::NoStream, deposit(2)).await.unwrap();
        store.append_in(&mut writer, "Account", "older-2", ExpectedVersion::NoStream, deposit(3)).await.unwrap();
        writer.commit().await.unwrap();
        let after = store.read_all(cursor, 10).await.unwrap();
        assert_eq!(
            after.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>(),
            ["older", "older-2"],
            "{isolation}: the late append was skipped or held back"
        );
        pg::drop_tables(&store).await;
    }
}

#[tokio::test]
async fn business_rows_and_events_commit_or_roll_back_together() {
    let store = pg::fresh_store().await;
    let table = format!("{}ledger", store.table(""));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE TABLE {table} (account TEXT NOT NULL)")))
        .execute(store.pool())
        .await
        .unwrap();
    let insert = format!("INSERT INTO {table} VALUES ($1)");

    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(insert.clone())).bind("a").execute(&mut *tx).await.unwrap();
    store.append_in(&mut tx, "Account", "a", ExpectedVersion::NoStream, deposit(1)).await.unwrap();
    tx.rollback().await.unwrap();

    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(insert)).bind("b").execute(&mut *tx).await.unwrap();
    store.append_in(&mut tx, "Account", "b", ExpectedVersion::NoStream, deposit(2)).await.unwrap();
    tx.commit().await.unwrap();

    let count = |sql: String| {
        let pool = store.pool().clone();
        async move { sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).fetch_one(&pool).await.unwrap() }
    };
    assert_eq!(count(format!("SELECT COUNT(*) FROM {table}")).await, 1);
    assert_eq!(count(format!("SELECT COUNT(*) FROM {}", store.table("events"))).await, 1);
    assert_eq!(count(format!("SELECT COUNT(*) FROM {}", store.table("outbox"))).await, 1);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {table}"))).execute(store.pool()).await.unwrap();
    pg::drop_tables(&store).await;
}

#[tokio::test]
async fn values_postgres_text_cannot_hold_are_refused_before_anything_is_written() {
    let store = pg::fresh_store().await;
    let error = store.append("Account", "nul\0id", ExpectedVersion::NoStream, deposit(1)).await.unwrap_err();
    assert!(matches!(error, StoreError::Unstorable { .. }), "{error}");
    assert!(error.to_string().contains("NUL"), "{error}");
    assert!(read_everything(&store).await.is_empty());
    pg::drop_tables(&store).await;
}

#[tokio::test]
async fn a_failing_handler_stops_the_projection_after_what_came_before_commits() {
    let store = pg::fresh_store().await;
    for (stream, amount) in [("a", 1), ("b", 13), ("c", 5)] {
        store.append("Account", stream, ExpectedVersion::NoStream, deposit(amount)).await.unwrap();
    }
    read_until(&store, 3).await;
    let mut runner = ProjectionRunner::new(store.clone(), Seen::new(&store));
    let error = runner.catch_up().await.unwrap_err().to_string();
    assert!(
        error.contains("(stream Account/b, version 1, event type `Deposited`): 13 is not accepted here"),
        "{error}"
    );
    assert_eq!(seen_amounts(&store).await, vec![1]);
    let mut skipping =
        ProjectionRunner::new(store.clone(), Seen::new(&store)).on_error(es::projection::OnError::RecordAndSkip);
    assert_eq!(skipping.catch_up().await.unwrap().skipped, 1);
    assert_eq!(seen_amounts(&store).await, vec![1, 5]);
    // A rebuild replays everything into an empty read model.
    skipping.rebuild().await.unwrap();
    apply_until(&mut skipping, 3).await.unwrap();
    assert_eq!(seen_amounts(&store).await, vec![1, 5]);
    drop_seen(&store).await;
    pg::drop_tables(&store).await;
}

#[tokio::test]
async fn the_log_is_ordered_by_transaction_number_not_by_its_digits() {
    let store = pg::fresh_store().await;
    // Transaction 100 sorts before 99 as text; the log must follow the numbers.
    for (xid, stream) in [("99", "first"), ("100", "second")] {
        let sql = format!(
            "INSERT INTO {} (transaction_id, event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, payload)
             VALUES ('{xid}'::xid8, $1, 'Account', '{stream}', 1, 'Deposited', 1, 0, '{{\"amount\":1}}')",
            store.table("events")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(RandomIds.next_id()).execute(store.pool()).await.unwrap();
    }
    let all = read_until(&store, 2).await;
    assert_eq!(all.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>(), ["first", "second"]);
    let after_first = store.read_all(all[0].cursor, 10).await.unwrap();
    assert_eq!(after_first.len(), 1, "nothing after the first event may be skipped");
    assert_eq!(after_first[0].stream_id, "second");
    pg::drop_tables(&store).await;
}

#[tokio::test]
async fn racing_appends_under_serializable_isolation_are_conflicts() {
    let store = pg::fresh_store().await;
    store.append("Account", "s", ExpectedVersion::NoStream, deposit(1)).await.unwrap();
    let mut first = store.pool().begin().await.unwrap();
    let mut second = store.pool().begin().await.unwrap();
    for tx in [&mut first, &mut second] {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").execute(&mut **tx).await.unwrap();
        // Both read before either writes.
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {}", store.table("events"))))
            .execute(&mut **tx)
            .await
            .unwrap();
    }
    store.append_in(&mut first, "Account", "s", ExpectedVersion::Exact(1), deposit(2)).await.unwrap();
    let racing = tokio::spawn({
        let store = store.clone();
        async move {
            let outcome = store.append_in(&mut second, "Account", "s", ExpectedVersion::Exact(1), deposit(3)).await;
            let commit = if outcome.is_ok() { second.commit().await.err() } else { None };
            (outcome, commit)
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    first.commit().await.unwrap();
    let (outcome, commit) = racing.await.unwrap();
    let error = outcome.expect_err("the second append must not succeed");
    assert!(error.is_conflict(), "a race is reported as a conflict to retry, not as {error}");
    assert!(commit.is_none());
    assert_eq!(read_until(&store, 2).await.len(), 2);
    pg::drop_tables(&store).await;
}
