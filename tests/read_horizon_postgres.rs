//! Readers of the global log wait only for transactions that may still append events:
//! an open transaction in another database of the server, or one in this database that
//! never touches the event tables, delays neither `read_all` nor a projection; one that
//! appended holds them back until it ends (and its events are then read, never
//! skipped), and `PgStore::read_horizon` names it.

mod pg;
mod support;

use std::time::Duration;

use es::postgres::{PgStore, Projection, ProjectionRunner};
use es::projection::HandlerError;
use es::{Cursor, EventStore, ExpectedVersion, IdSource, Metadata, NewEvent, RandomIds, StoredEvent, Timestamp};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use support::AccountEvent;

fn deposit(amount: u64) -> Vec<NewEvent> {
    let event = AccountEvent::Deposited { amount };
    vec![NewEvent::encode(&event, RandomIds.next_id(), Timestamp::EPOCH, Metadata::default()).unwrap()]
}

/// Counts the events it sees, in the projection's transaction.
struct Count {
    table: String,
}

impl Projection for Count {
    fn name(&self) -> &'static str {
        "count"
    }

    async fn setup(&mut self, tx: &mut PgConnection) -> Result<(), HandlerError> {
        let sql = format!("CREATE TABLE IF NOT EXISTS {} (event_id UUID PRIMARY KEY)", self.table);
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(tx).await?;
        Ok(())
    }

    async fn handle(&mut self, tx: &mut PgConnection, event: &StoredEvent) -> Result<(), HandlerError> {
        sqlx::query(AssertSqlSafe(format!("INSERT INTO {} VALUES ($1)", self.table)))
            .bind(event.event_id)
            .execute(tx)
            .await?;
        Ok(())
    }

    async fn reset(&mut self, tx: &mut PgConnection) -> Result<(), HandlerError> {
        sqlx::raw_sql(AssertSqlSafe(format!("DELETE FROM {}", self.table))).execute(tx).await?;
        Ok(())
    }
}

/// A connection to another database of the same server (created when missing).
async fn other_database() -> PgConnection {
    const NAME: &str = "es_horizon_other";
    let mut admin = PgConnection::connect(&pg::url()).await.unwrap();
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(NAME)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    if !exists {
        // Two test processes may race to create it: "already exists" is as good.
        if let Err(error) = sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {NAME}"))).execute(&mut admin).await {
            let code =
                error.as_database_error().and_then(sqlx::error::DatabaseError::code).unwrap_or_default().into_owned();
            assert!(code == "42P04" || code == "23505", "cannot create database {NAME}: {error}");
        }
    }
    let options: sqlx::postgres::PgConnectOptions = pg::url().parse().unwrap();
    PgConnection::connect_with(&options.database(NAME)).await.unwrap()
}

/// Opens a transaction on `connection` that has taken a transaction id (as any
/// transaction that writes does), and returns that id.
async fn open_writing_transaction(connection: &mut PgConnection) -> u64 {
    sqlx::raw_sql("BEGIN").execute(&mut *connection).await.unwrap();
    let id: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text").fetch_one(&mut *connection).await.unwrap();
    id.parse().unwrap()
}

/// Appends three events in their own transactions, then checks that `read_all` and a
/// projection get all of them at once, without waiting.
async fn readers_are_not_held_back(store: &PgStore) {
    for (stream, amount) in [("a", 1), ("b", 2), ("c", 3)] {
        store.append("Account", stream, ExpectedVersion::NoStream, deposit(amount)).await.unwrap();
    }
    let status = store.read_horizon().await.unwrap();
    assert!(!status.is_held_back(), "held back by {:?}", status.held_back_by);
    assert_eq!(status.waiting_events, 0);
    assert_eq!(store.read_all(Cursor::START, 10).await.unwrap().len(), 3, "read_all waited");
    let mut runner = ProjectionRunner::new(store.clone(), Count { table: store.table("count") });
    assert_eq!(runner.catch_up().await.unwrap().applied, 3, "the projection waited");
    assert_eq!(runner.lag().await.unwrap(), 0);
}

#[tokio::test]
async fn an_open_transaction_in_another_database_holds_no_reader_back() {
    let store = pg::fresh_store().await;
    let mut other = other_database().await;
    let id = open_writing_transaction(&mut other).await;
    readers_are_not_held_back(&store).await;
    // The transaction is really open and really has an id: the server-wide snapshot
    // horizon (what readers used to wait for) is held at or below it.
    let xmin: String = sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(xmin.parse::<u64>().unwrap() <= id, "the other transaction is not open");
    sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
    pg::drop_tables(&store).await;
}

#[tokio::test]
async fn an_open_transaction_that_never_touches_the_event_tables_holds_no_reader_back() {
    let store = pg::fresh_store().await;
    let table = store.table("business");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE TABLE {table} (note TEXT)"))).execute(store.pool()).await.unwrap();
    // Same database, writing rows of its own, open for the whole test.
    let mut unrelated = PgConnection::connect(&pg::url()).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut unrelated).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!("INSERT INTO {table} VALUES ('open')"))).execute(&mut unrelated).await.unwrap();
    readers_are_not_held_back(&store).await;
    sqlx::raw_sql("ROLLBACK").execute(&mut unrelated).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE {table}"))).execute(store.pool()).await.unwrap();
    pg::drop_tables(&store).await;
}

#[tokio::test]
async fn a_transaction_that_appended_holds_readers_back_is_reported_and_is_then_read() {
    let store = pg::fresh_store().await;
    store.append("Account", "before", ExpectedVersion::NoStream, deposit(1)).await.unwrap();
    let mut runner = ProjectionRunner::new(store.clone(), Count { table: store.table("count") });
    assert_eq!(runner.catch_up().await.unwrap().applied, 1);

    // An appending transaction, on a connection of its own with a name an operator
    // would recognise, left open.
    let mut open = PgConnection::connect(&pg::url()).await.unwrap();
    sqlx::raw_sql("SET application_name = 'horizon-test-writer'").execute(&mut open).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut open).await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut open).await.unwrap();
    let open_at = Timestamp::from_unix_micros(
        sqlx::query_scalar("SELECT (EXTRACT(EPOCH FROM now()) * 1000000)::int8").fetch_one(&mut open).await.unwrap(),
    );
    store.append_in(&mut open, "Account", "slow", ExpectedVersion::NoStream, deposit(2)).await.unwrap();
    store.append("Account", "after", ExpectedVersion::NoStream, deposit(3)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Readers wait: the committed event after it is not read yet ...
    assert_eq!(runner.catch_up().await.unwrap().applied, 0);
    let read = store.read_all(Cursor::START, 10).await.unwrap();
    assert_eq!(read.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>(), ["before"]);
    // ... and the status says who holds them back, since when, and what waits.
    let status = store.read_horizon().await.unwrap();
    assert!(status.is_held_back());
    assert_eq!(status.waiting_events, 1, "the committed event after the open transaction");
    let [holder] = status.held_back_by.as_slice() else { panic!("one holder expected: {status:?}") };
    assert_eq!(holder.pid, Some(pid));
    assert_eq!(holder.application_name.as_deref(), Some("horizon-test-writer"));
    assert_eq!(holder.state.as_deref(), Some("idle in transaction"));
    assert_eq!(holder.transaction_started, Some(open_at));
    assert!(holder.age.is_some_and(|age| age >= Duration::from_millis(20)), "{:?}", holder.age);
    assert!(holder.query_started.is_some_and(|at| at >= open_at));
    assert!(!holder.waiting_for_lock);
    assert!(status.horizon <= holder.transaction_id);

    // Once it commits, both events are read, in commit-order-safe order, once.
    sqlx::raw_sql("COMMIT").execute(&mut open).await.unwrap();
    let status = store.read_horizon().await.unwrap();
    assert!(!status.is_held_back(), "{status:?}");
    let read = store.read_all(read[0].cursor, 10).await.unwrap();
    assert_eq!(read.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>(), ["slow", "after"]);
    assert_eq!(runner.catch_up().await.unwrap().applied, 2);
    assert_eq!(runner.lag().await.unwrap(), 0);
    pg::drop_tables(&store).await;
}

#[tokio::test]
async fn a_transaction_begun_for_appends_holds_no_reader_back_until_it_writes() {
    let store = pg::fresh_store().await;
    // Holds the append lock from `BEGIN` on, but has no transaction id yet.
    let mut tx = store.begin().await.unwrap();
    store.append("Account", "other", ExpectedVersion::NoStream, deposit(1)).await.unwrap();
    assert_eq!(store.read_all(Cursor::START, 10).await.unwrap().len(), 1);
    store.append_in(&mut tx, "Account", "mine", ExpectedVersion::NoStream, deposit(2)).await.unwrap();
    store.append("Account", "third", ExpectedVersion::NoStream, deposit(3)).await.unwrap();
    assert_eq!(store.read_all(Cursor::START, 10).await.unwrap().len(), 1, "read past an open append");
    tx.commit().await.unwrap();
    let all = store.read_all(Cursor::START, 10).await.unwrap();
    assert_eq!(all.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>(), ["other", "mine", "third"]);
    pg::drop_tables(&store).await;
}
