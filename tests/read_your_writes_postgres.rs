//! Read-your-writes on PostgreSQL (feature `postgres`; needs the server): a command's
//! cursor, a wait woken by the notification of a projection pass in another process,
//! and a read of the read model that includes the write.

mod pg;
mod support;

use std::process::Stdio;
use std::time::Duration;

use es::postgres::{PgStore, Projection, ProjectionRunner};
use es::projection::{HandlerError, WaitError};
use es::{Repository, StoredEvent};
use sqlx::PgConnection;
use support::process::{child_role, rerun_as_child};
use support::{Account, AccountEvent};

const RUNNER: &str = "ES_RYW_POSTGRES_RUNNER";
const TEST: &str = "a_write_is_read_back_from_a_projection_run_by_another_process";

/// Balances per account, in the store's database.
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
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(tx).await?;
        Ok(())
    }

    async fn handle(&mut self, tx: &mut PgConnection, event: &StoredEvent) -> Result<(), HandlerError> {
        if let AccountEvent::Deposited { amount } = event.clone().decode::<AccountEvent>()?.event() {
            let sql = format!(
                "INSERT INTO {} VALUES ($1, $2) ON CONFLICT (account) DO UPDATE SET balance = {0}.balance + excluded.balance",
                self.table
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&event.stream_id)
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

async fn balance(store: &PgStore, account: &str) -> Option<i64> {
    let sql = format!("SELECT balance FROM {} WHERE account = $1", store.table("balances"));
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(account).fetch_optional(store.pool()).await.unwrap()
}

/// The child: runs the projection until the parent closes its stdin.
async fn run_projection(prefix: &str) {
    let store = pg::store_with_prefix(prefix).await;
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    });
    let balances = Balances { table: store.table("balances") };
    ProjectionRunner::new(store, balances).run(async { stdin_closed.await.unwrap() }).await.unwrap();
}

#[test]
fn a_write_is_read_back_from_a_projection_run_by_another_process() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    if let Some(prefix) = child_role(RUNNER) {
        return runtime.block_on(run_projection(&prefix));
    }
    let prefix = pg::unique_prefix();
    runtime.block_on(async {
        let store = pg::store_with_prefix(&prefix).await;
        let repository = Repository::new(store.clone());
        repository.execute("acc-1", |a: &Account, ctx| a.open("Ada", ctx)).await.unwrap();
        let committed = repository.execute("acc-1", |a: &Account, _| a.deposit(5)).await.unwrap();
        // No runner yet: a typed timeout.
        let error = store
            .wait_for_projection("balances", committed.cursor().unwrap(), Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(error, WaitError::TimedOut { checkpoint: None, .. }), "{error}");

        let mut runner = rerun_as_child(TEST, RUNNER, &prefix).stdin(Stdio::piped()).spawn().unwrap();
        let mut expected = 5;
        for amount in [7_u64, 11, 13] {
            expected += i64::try_from(amount).unwrap();
            let committed = repository.execute("acc-1", |a: &Account, _| a.deposit(amount)).await.unwrap();
            let cursor = committed.cursor().unwrap();
            let checkpoint = store.wait_for_projection("balances", cursor, Duration::from_secs(20)).await.unwrap();
            assert!(checkpoint.cursor >= cursor);
            assert_eq!(balance(&store, "acc-1").await, Some(expected));
        }
        drop(runner.stdin.take());
        assert!(runner.wait().unwrap().success());
        let sql = format!("DROP TABLE IF EXISTS {}", store.table("balances"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(store.pool()).await.unwrap();
        pg::drop_tables(&store).await;
    });
}

#[tokio::test]
async fn a_wait_is_woken_by_a_pass_not_by_the_poll() {
    let store = pg::fresh_store().await;
    let repository = Repository::new(store.clone());
    repository.execute("acc-2", |a: &Account, ctx| a.open("Ada", ctx)).await.unwrap();
    // Until the store listens, notifications are lost: wait until an append is heard.
    let mut appends = es::EventStore::watch_appends(&store);
    let mut deposited = 0;
    let cursor = loop {
        let cursor = repository.execute("acc-2", |a: &Account, _| a.deposit(3)).await.unwrap().cursor().unwrap();
        deposited += 3;
        if tokio::time::timeout(Duration::from_millis(200), appends.changed()).await.is_ok() {
            break cursor;
        }
    };
    let mut runner = ProjectionRunner::new(store.clone(), Balances { table: store.table("balances") });
    let started = std::time::Instant::now();
    let (waited, caught_up) = tokio::join!(runner.wait_for(cursor, Duration::from_secs(20)), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A second runner value of the same projection does the pass.
        ProjectionRunner::new(store.clone(), Balances { table: store.table("balances") }).catch_up().await
    });
    caught_up.unwrap();
    assert!(waited.unwrap().cursor >= cursor);
    // Woken by the pass's notification, well before the one-second poll.
    assert!(started.elapsed() < Duration::from_millis(900), "woken by the poll: {:?}", started.elapsed());
    assert_eq!(balance(&store, "acc-2").await, Some(deposited));
    runner.rebuild().await.unwrap();
    let sql = format!("DROP TABLE IF EXISTS {}", store.table("balances"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(store.pool()).await.unwrap();
    pg::drop_tables(&store).await;
}
