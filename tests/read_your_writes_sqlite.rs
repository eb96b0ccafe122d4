//! Read-your-writes on SQLite: a command's cursor, a wait for a projection run by
//! another process, and a read of the read model that includes the write.

mod support;

use std::process::Stdio;
use std::time::Duration;

use es::projection::{HandlerError, WaitError};
use es::sqlite::{Projection, ProjectionRunner, SqliteStore};
use es::{Repository, StoredEvent};
use support::process::{child_role, rerun_as_child};
use support::{Account, AccountEvent};

const RUNNER: &str = "ES_RYW_SQLITE_RUNNER";
const TEST: &str = "a_write_is_read_back_from_a_projection_run_by_another_process";

/// Balances per account, in the same database.
struct Balances;

impl Projection for Balances {
    fn name(&self) -> &'static str {
        "balances"
    }

    fn setup(&mut self, tx: &rusqlite::Connection) -> Result<(), HandlerError> {
        tx.execute_batch("CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)")?;
        Ok(())
    }

    fn handle(&mut self, tx: &rusqlite::Connection, event: &StoredEvent) -> Result<(), HandlerError> {
        if let AccountEvent::Deposited { amount } = event.clone().decode::<AccountEvent>()?.event() {
            tx.execute(
                "INSERT INTO balances VALUES (?1, ?2) ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance",
                rusqlite::params![event.stream_id, i64::try_from(*amount)?],
            )?;
        }
        Ok(())
    }

    fn reset(&mut self, tx: &rusqlite::Connection) -> Result<(), HandlerError> {
        tx.execute("DELETE FROM balances", [])?;
        Ok(())
    }
}

/// The child: runs the projection until the parent closes its stdin.
async fn run_projection(db: &str) {
    let store = SqliteStore::open(db).await.unwrap();
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    });
    // A long poll: the other process's appends are not heard, so this shows that the
    // wait does not depend on the runner being prompt, only on its checkpoint.
    let runner = ProjectionRunner::new(store, Balances).poll_interval(Duration::from_millis(100));
    runner.run(async { stdin_closed.await.unwrap() }).await.unwrap();
}

async fn balance(store: &SqliteStore, account: &str) -> Option<i64> {
    let account = account.to_owned();
    store
        .read(move |connection| {
            connection.query_row("SELECT balance FROM balances WHERE account = ?1", [account], |row| row.get(0))
        })
        .await
        .ok()
}

#[test]
fn a_write_is_read_back_from_a_projection_run_by_another_process() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    if let Some(db) = child_role(RUNNER) {
        return runtime.block_on(run_projection(&db));
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ryw.db");
    let db = db.to_str().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(db).await.unwrap();
        let repository = Repository::new(store.clone());
        repository.execute("acc-1", |a: &Account, ctx| a.open("Ada", ctx)).await.unwrap();
        // No runner yet: the wait times out with a typed error, and says where it stood.
        let committed = repository.execute("acc-1", |a: &Account, _| a.deposit(5)).await.unwrap();
        let error = store
            .wait_for_projection("balances", committed.cursor().unwrap(), Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(error, WaitError::TimedOut { checkpoint: None, .. }), "{error}");

        let mut runner = rerun_as_child(TEST, RUNNER, db).stdin(Stdio::piped()).spawn().unwrap();
        for amount in [7, 11, 13] {
            let committed = repository.execute("acc-1", |a: &Account, _| a.deposit(amount)).await.unwrap();
            let cursor = committed.cursor().unwrap();
            let checkpoint = store.wait_for_projection("balances", cursor, Duration::from_secs(20)).await.unwrap();
            assert!(checkpoint.cursor >= cursor);
            // The read model includes the write, read right after the wait.
            let expected = [12, 23, 36][[7, 11, 13].iter().position(|a| *a == amount).unwrap()];
            assert_eq!(balance(&store, "acc-1").await, Some(expected));
        }
        drop(runner.stdin.take());
        assert!(runner.wait().unwrap().success());
    });
}

#[tokio::test]
async fn a_runner_waits_for_its_own_passes_and_times_out_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("ryw.db")).await.unwrap();
    let repository = Repository::new(store.clone());
    repository.execute("acc-2", |a: &Account, ctx| a.open("Ada", ctx)).await.unwrap();
    let committed = repository.execute("acc-2", |a: &Account, _| a.deposit(3)).await.unwrap();
    let cursor = committed.cursor().unwrap();
    let mut runner = ProjectionRunner::new(store.clone(), Balances);
    let error = runner.wait_for(cursor, Duration::from_millis(50)).await.unwrap_err();
    assert!(matches!(error, WaitError::TimedOut { .. }), "{error}");
    // A pass that starts after the wait did ends it.
    let (waited, caught_up) =
        tokio::join!(store.wait_for_projection("balances", cursor, Duration::from_secs(5)), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            runner.catch_up().await
        });
    caught_up.unwrap();
    assert!(waited.unwrap().cursor >= cursor);
    assert_eq!(balance(&store, "acc-2").await, Some(3));
}
