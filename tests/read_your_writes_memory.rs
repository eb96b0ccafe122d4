//! Read-your-writes on the in-memory store: a wait for a projection that another task
//! runs, and a typed timeout when none does.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use es::memory::{Projection, ProjectionRunner};
use es::projection::{HandlerError, WaitError};
use es::{MemoryStore, MemoryTransaction, Repository, StoredEvent};
use support::{Account, AccountEvent};

/// Deposits seen, shared with the test.
struct Deposits(Arc<Mutex<u64>>);

impl Projection for Deposits {
    fn name(&self) -> &'static str {
        "deposits"
    }

    fn handle(&mut self, _tx: &mut MemoryTransaction<'_>, event: &StoredEvent) -> Result<(), HandlerError> {
        if let AccountEvent::Deposited { amount } = event.decode_ref::<AccountEvent>()?.event() {
            *self.0.lock().unwrap() += amount;
        }
        Ok(())
    }

    fn reset(&mut self, _tx: &mut MemoryTransaction<'_>) -> Result<(), HandlerError> {
        *self.0.lock().unwrap() = 0;
        Ok(())
    }
}

#[tokio::test]
async fn a_write_is_read_back_once_a_running_projection_passed_it() {
    let store = MemoryStore::new();
    let repository = Repository::new(store.clone());
    repository.execute("acc-1", |a: &Account, ctx| a.open("Ada", ctx)).await.unwrap();
    let seen = Arc::new(Mutex::new(0));
    let cursor = repository.execute("acc-1", |a: &Account, _| a.deposit(4)).await.unwrap().cursor().unwrap();
    let error = store.wait_for_projection("deposits", cursor, Duration::from_millis(50)).await.unwrap_err();
    assert!(matches!(error, WaitError::TimedOut { checkpoint: None, .. }), "{error}");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = ProjectionRunner::new(store.clone(), Deposits(seen.clone())).poll_interval(Duration::from_mins(1));
    let running = tokio::spawn(runner.run(async { stopped.await.unwrap_or(()) }));
    for (amount, total) in [(5, 9), (6, 15)] {
        let cursor = repository.execute("acc-1", |a: &Account, _| a.deposit(amount)).await.unwrap().cursor().unwrap();
        let checkpoint = store.wait_for_projection("deposits", cursor, Duration::from_secs(10)).await.unwrap();
        assert!(checkpoint.cursor >= cursor);
        assert_eq!(*seen.lock().unwrap(), total);
    }
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}
