//! The read-model suite against the in-memory store, and its runner driving a
//! hand-written projection.

mod read_models;

use es::memory::{Projection, ProjectionRunner};
use es::projection::{HandlerError, OnError, ProjectionError};
use es::{EventStore, ExpectedVersion, MemoryStore, MemoryTransaction, StoredEvent};
use read_models::{Account, AccountEvent, deposit, encode, opened};

async fn new_store() -> MemoryStore {
    MemoryStore::new()
}

async fn clean_up(_: &MemoryStore) {}

read_model_suite!(es::memory::ProjectionRunner);

/// Deposits per account, kept in the projection itself; refuses a deposit of 13.
#[derive(Default)]
struct Deposits(std::collections::BTreeMap<String, u64>);

impl Projection for Deposits {
    fn name(&self) -> &'static str {
        "deposits"
    }

    fn handle(&mut self, _tx: &mut MemoryTransaction<'_>, event: &StoredEvent) -> Result<(), HandlerError> {
        let Some(recorded) = event.decode_for::<Account>()? else { return Ok(()) };
        if let AccountEvent::Deposited { amount, .. } = recorded.event() {
            if *amount == 13 {
                return Err(HandlerError::new("13 is not accepted here"));
            }
            *self.0.entry(recorded.stream_id().to_owned()).or_default() += amount;
        }
        Ok(())
    }

    fn reset(&mut self, _tx: &mut MemoryTransaction<'_>) -> Result<(), HandlerError> {
        self.0.clear();
        Ok(())
    }
}

#[tokio::test]
async fn the_memory_runner_has_the_checkpoint_lag_batches_and_policies_of_the_others() {
    let store = MemoryStore::new();
    store
        .append("Account", "a-1", ExpectedVersion::NoStream, encode(&[opened("Ada"), deposit(2), deposit(3)]))
        .await
        .unwrap();
    let mut runner = ProjectionRunner::new(store.clone(), Deposits::default()).batch_size(2);
    assert_eq!((runner.checkpoint().await.unwrap(), runner.lag().await.unwrap()), (None, 3));
    assert_eq!(runner.run_once().await.unwrap().applied, 2, "one batch");
    assert_eq!(runner.lag().await.unwrap(), 1);
    assert_eq!(runner.catch_up().await.unwrap().applied, 1);
    assert_eq!(runner.projection().0.get("a-1"), Some(&5));
    assert_eq!(runner.checkpoint().await.unwrap().unwrap().cursor.position, 3);

    // A restarted runner resumes after the stored checkpoint; a new projection value
    // starts empty, so only the new deposits reach it.
    store.append("Account", "a-1", ExpectedVersion::Exact(3), encode(&[deposit(13), deposit(7)])).await.unwrap();
    let mut restarted = ProjectionRunner::new(store.clone(), Deposits::default());
    let error = restarted.catch_up().await.unwrap_err();
    assert!(
        matches!(&error, ProjectionError::Event { projection, version: 4, .. } if projection == "deposits"),
        "{error:?}"
    );
    assert_eq!(restarted.lag().await.unwrap(), 2, "stopped before the failing event");
    let mut skipping = ProjectionRunner::new(store.clone(), Deposits::default()).on_error(OnError::RecordAndSkip);
    let report = skipping.catch_up().await.unwrap();
    assert_eq!((report.applied, report.skipped), (1, 1));
    assert_eq!(skipping.projection().0.get("a-1"), Some(&7));

    // A rebuild starts again from the first event.
    skipping.rebuild().await.unwrap();
    assert_eq!(skipping.checkpoint().await.unwrap(), None);
    assert_eq!(skipping.catch_up().await.unwrap().skipped, 1);
    assert_eq!(skipping.projection().0.get("a-1"), Some(&12));
}
