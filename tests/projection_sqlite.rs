//! Projections on SQLite: the checkpoint commits with the effects, restarts resume
//! strictly after it, and bad events stop the projection with a clear error (or are
//! recorded and skipped when asked).

mod support;

use es::projection::{HandlerError, OnError, ProjectionError};
use es::sqlite::rusqlite; // the version the store is built with
use es::sqlite::{Projection, ProjectionRunner, SqliteStore};
use es::{EventStore, ExpectedVersion, IdSource, Metadata, NewEvent, RandomIds, StoredEvent, Timestamp};
use support::{Account, AccountEvent};

/// Balances per account, in a table of the same database.
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
        // Typed, and only for accounts: other stream types are not even decoded.
        let Some(recorded) = event.decode_for::<Account>()? else { return Ok(()) };
        let delta: i64 = match recorded.event() {
            AccountEvent::Deposited { amount } => i64::try_from(*amount)?,
            AccountEvent::Withdrawn { amount } => -i64::try_from(*amount)?,
            _ => return Ok(()),
        };
        tx.execute(
            "INSERT INTO balances VALUES (?1, ?2) ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance",
            rusqlite::params![recorded.stream_id(), delta],
        )?;
        if delta == 13 {
            return Err(HandlerError::new("13 is not accepted here"));
        }
        Ok(())
    }

    fn reset(&mut self, tx: &rusqlite::Connection) -> Result<(), HandlerError> {
        tx.execute("DELETE FROM balances", [])?;
        Ok(())
    }
}

async fn store() -> SqliteStore {
    let dir = tempfile::tempdir().unwrap().keep();
    SqliteStore::open(dir.join("events.db")).await.unwrap()
}

fn events(list: &[AccountEvent]) -> Vec<NewEvent> {
    list.iter()
        .map(|e| NewEvent::encode(e, RandomIds.next_id(), Timestamp::EPOCH, Metadata::default()).unwrap())
        .collect()
}

fn deposit(amount: u64) -> AccountEvent {
    AccountEvent::Deposited { amount }
}

async fn balances(store: &SqliteStore) -> Vec<(String, i64)> {
    store
        .read(|c| {
            let mut statement = c.prepare("SELECT account, balance FROM balances ORDER BY account")?;
            statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_deleted_checkpoint_rebuilds_the_read_model_from_the_first_event() {
    use es::admin::Admin;
    let store = store().await;
    store.append("Account", "a", ExpectedVersion::NoStream, events(&[deposit(1), deposit(2)])).await.unwrap();
    let mut runner = ProjectionRunner::new(store.clone(), Balances);
    runner.catch_up().await.unwrap();
    assert_eq!(balances(&store).await, vec![("a".to_owned(), 3)]);
    // What `es projections reset` does, while the runner lives on: only the
    // checkpoint goes.
    assert!(store.reset_projection("balances").await.unwrap());
    store.append("Account", "a", ExpectedVersion::Exact(2), events(&[deposit(4)])).await.unwrap();
    let report = runner.catch_up().await.unwrap();
    assert_eq!(report.applied, 3);
    // Emptied first, then every event once: not 3 + 7.
    assert_eq!(balances(&store).await, vec![("a".to_owned(), 7)]);
    assert!(!store.reset_projection("nobody").await.unwrap());
}

#[tokio::test]
async fn a_restarted_projection_resumes_strictly_after_its_checkpoint() {
    let store = store().await;
    store.append("Account", "a", ExpectedVersion::NoStream, events(&[deposit(1), deposit(2)])).await.unwrap();
    store.append("Account", "b", ExpectedVersion::NoStream, events(&[deposit(10)])).await.unwrap();
    let mut runner = ProjectionRunner::new(store.clone(), Balances).batch_size(2);
    let report = runner.catch_up().await.unwrap();
    assert_eq!(report.applied, 3);
    let checkpoint = runner.checkpoint().await.unwrap().unwrap();
    assert_eq!(checkpoint.cursor.position, 3);
    assert_eq!(balances(&store).await, vec![("a".into(), 3), ("b".into(), 10)]);

    // A new runner (a restart) applies only what came after the checkpoint.
    store.append("Account", "a", ExpectedVersion::Exact(2), events(&[deposit(100)])).await.unwrap();
    let mut restarted = ProjectionRunner::new(store.clone(), Balances);
    assert_eq!(restarted.lag().await.unwrap(), 1);
    assert_eq!(restarted.catch_up().await.unwrap().applied, 1);
    assert_eq!(restarted.lag().await.unwrap(), 0);
    assert_eq!(balances(&store).await, vec![("a".into(), 103), ("b".into(), 10)]);

    // A rebuild from zero gives the same read model.
    restarted.rebuild().await.unwrap();
    assert!(restarted.checkpoint().await.unwrap().is_none());
    assert_eq!(restarted.catch_up().await.unwrap().applied, 4);
    assert_eq!(balances(&store).await, vec![("a".into(), 103), ("b".into(), 10)]);
}

#[tokio::test]
async fn a_failing_handler_stops_the_projection_after_what_came_before_commits() {
    let store = store().await;
    store
        .append("Account", "a", ExpectedVersion::NoStream, events(&[deposit(1), deposit(13), deposit(5)]))
        .await
        .unwrap();
    let mut runner = ProjectionRunner::new(store.clone(), Balances);
    let error = runner.catch_up().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "projection balances stopped at position 2 (stream Account/a, version 2, event type `Deposited`): 13 is not accepted here"
    );
    assert_eq!(runner.checkpoint().await.unwrap().unwrap().cursor.position, 1);
    assert_eq!(balances(&store).await, vec![("a".into(), 1)], "the failing event's own writes are undone");
    // It stays stopped on the same event.
    assert!(matches!(runner.catch_up().await.unwrap_err(), ProjectionError::Event { version: 2, .. }));
}

#[tokio::test]
async fn record_and_skip_undoes_the_bad_event_records_it_and_goes_on() {
    let store = store().await;
    store
        .append("Account", "a", ExpectedVersion::NoStream, events(&[deposit(1), deposit(13), deposit(5)]))
        .await
        .unwrap();
    let mut runner = ProjectionRunner::new(store.clone(), Balances).on_error(OnError::RecordAndSkip);
    let report = runner.catch_up().await.unwrap();
    assert_eq!((report.applied, report.skipped), (2, 1));
    assert_eq!(balances(&store).await, vec![("a".into(), 6)]);
    let (position, consumer): (i64, String) = store
        .read(|c| c.query_row("SELECT position, consumer FROM es_skipped", [], |r| Ok((r.get(0)?, r.get(1)?))))
        .await
        .unwrap();
    assert_eq!((position, consumer.as_str()), (2, "projection:balances"));
}

#[tokio::test]
async fn a_version_gap_written_behind_the_librarys_back_stops_the_projection() {
    let store = store().await;
    store.append("Account", "account-7", ExpectedVersion::NoStream, events(&[deposit(1)])).await.unwrap();
    store
        .transaction(|tx| {
            tx.execute_batch(
                "INSERT INTO es_events (event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload)
                 VALUES (randomblob(16), 'Account', 'account-7', 3, 'Deposited', 1, 0, NULL, '{\"amount\":4}')",
            )
            .map_err(es::StoreError::from)
        })
        .await
        .unwrap();
    let mut runner = ProjectionRunner::new(store.clone(), Balances);
    let error = runner.catch_up().await.unwrap_err().to_string();
    assert!(error.ends_with("stream account-7: expected version 2, got 3"), "{error}");
    // Reading the stream refuses it too, naming the stream and the version.
    let error = store.read_stream("Account", "account-7", 1).await.unwrap_err();
    assert!(matches!(error, es::StoreError::Corrupt { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "corrupt stored data at stream Account/account-7, version 3 (position 2): expected version 2, got 3: the stream's versions have a gap or a repeat"
    );
    // And so does the store's own fold, which reads without copying the rows.
    let gap = store.load::<support::Account>("account-7").await.unwrap_err();
    assert_eq!(gap.to_string(), "stream account-7: expected version 2, got 3");
}

#[tokio::test]
async fn corrupt_payloads_and_unknown_types_are_named_not_panicked_on() {
    let store = store().await;
    store
        .transaction(|tx| {
            tx.execute_batch(
                "INSERT INTO es_events (event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload)
                 VALUES (randomblob(16), 'Account', 'x', 1, 'Deposited', 1, 0, NULL, '{\"amount\": \"lots\"}');
                 INSERT INTO es_events (event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload)
                 VALUES (randomblob(16), 'Account', 'y', 1, 'Teleported', 1, 0, NULL, '{}');",
            )
            .map_err(es::StoreError::from)
        })
        .await
        .unwrap();
    let mut runner = ProjectionRunner::new(store.clone(), Balances);
    let error = runner.catch_up().await.unwrap_err().to_string();
    assert!(error.contains("stream Account/x, version 1, event type `Deposited`"), "{error}");
    assert!(error.contains("payload of event `Deposited`"), "{error}");

    let mut skipping = ProjectionRunner::new(store.clone(), Balances).on_error(OnError::RecordAndSkip);
    assert_eq!(skipping.catch_up().await.unwrap().skipped, 2);
    let reasons: Vec<String> = store
        .read(|c| c.prepare("SELECT reason FROM es_skipped ORDER BY position")?.query_map([], |r| r.get(0))?.collect())
        .await
        .unwrap();
    assert!(reasons[1].contains("unknown event type `Teleported`"), "{reasons:?}");
}

/// Counts what it applied, and panics on a deposit of 99.
#[derive(Default)]
struct Fragile {
    applied: u64,
}

impl Projection for Fragile {
    fn name(&self) -> &'static str {
        "fragile"
    }

    fn handle(&mut self, _tx: &rusqlite::Connection, event: &StoredEvent) -> Result<(), HandlerError> {
        if let AccountEvent::Deposited { amount: 99 } = event.decode_ref::<AccountEvent>()?.event() {
            panic!("99 is a bug in this handler");
        }
        self.applied += 1;
        Ok(())
    }

    fn reset(&mut self, _tx: &rusqlite::Connection) -> Result<(), HandlerError> {
        self.applied = 0;
        Ok(())
    }
}

#[tokio::test]
async fn a_panicking_handler_is_an_error_and_the_runner_keeps_its_projection() {
    let store = store().await;
    store.append("Account", "a", ExpectedVersion::NoStream, events(&[deposit(1), deposit(99)])).await.unwrap();
    let mut runner = ProjectionRunner::new(store.clone(), Fragile::default()).batch_size(1);
    assert_eq!(runner.run_once().await.unwrap().applied, 1);
    assert_eq!(runner.lag().await.unwrap(), 1);
    let error = runner.run_once().await.unwrap_err();
    assert!(error.to_string().contains("panicked"), "{error}");
    // The pass was rolled back: the checkpoint did not move, and the projection is
    // still there to inspect and to run again.
    assert_eq!(runner.checkpoint().await.unwrap().unwrap().cursor.position, 1);
    assert_eq!(runner.projection().applied, 1);
    assert_eq!(runner.lag().await.unwrap(), 1);
    assert!(runner.run_once().await.is_err(), "the same event fails the same way");
}
