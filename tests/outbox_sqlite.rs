//! The local event table on SQLite: events, outbox rows and the caller's own writes
//! commit together, and the relay delivers every row at least once, in stream order,
//! parking what keeps failing without halting other streams.

mod fencing;
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use es::relay::Outbox;
use es::sink::{ChannelSink, JsonLinesSink};
use es::sqlite::SqliteStore;
use es::{
    EventStore, ExpectedVersion, IdSource, Metadata, NewEvent, RandomIds, Relay, RelayOptions, Sink, SinkError,
    StoredEvent, Timestamp,
};
use support::AccountEvent;

async fn store() -> SqliteStore {
    let dir = tempfile::tempdir().unwrap().keep();
    SqliteStore::open(dir.join("events.db")).await.unwrap()
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

fn fast_options() -> RelayOptions {
    RelayOptions {
        batch_size: 16,
        poll_interval: Duration::from_millis(20),
        max_attempts: 3,
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        ..RelayOptions::default()
    }
}

/// Runs passes until one delivers and fails nothing and nothing is retrying.
async fn drain<S: Sink>(relay: &mut Relay<SqliteStore, S>) -> es::RelayReport {
    let mut total = es::RelayReport::default();
    for _ in 0..500 {
        let report = relay.run_once().await.unwrap();
        total.delivered += report.delivered;
        total.failed += report.failed;
        total.parked += report.parked;
        let status = relay.outbox().status().await.unwrap();
        if report.delivered == 0 && report.failed == 0 && status.retrying == 0 {
            return total;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the relay did not settle");
}

/// A sink that records what it got and fails for the streams it is told to.
#[derive(Default, Clone)]
struct Recording {
    got: Arc<Mutex<Vec<StoredEvent>>>,
    failing: Arc<Mutex<Vec<String>>>,
    permanent: bool,
}

impl Sink for Recording {
    async fn deliver(&self, events: &[StoredEvent], _lease: es::LeaseGeneration) -> Result<(), SinkError> {
        let failing = self.failing.lock().unwrap().clone();
        if let Some(bad) = events.iter().find(|e| failing.contains(&e.stream_id)) {
            let message = format!("refusing {} v{}", bad.stream_id, bad.stream_version);
            return Err(if self.permanent { SinkError::permanent(message) } else { SinkError::transient(message) });
        }
        self.got.lock().unwrap().extend(events.iter().cloned());
        Ok(())
    }
}

fn versions_by_stream(events: &[StoredEvent]) -> HashMap<String, Vec<u64>> {
    let mut by_stream: HashMap<String, Vec<u64>> = HashMap::new();
    for event in events {
        by_stream.entry(event.stream_id.clone()).or_default().push(event.stream_version);
    }
    by_stream
}

#[tokio::test]
async fn business_rows_events_and_outbox_rows_commit_together() {
    let store = store().await;
    store
        .transaction(|tx| {
            tx.execute_batch("CREATE TABLE transfers (id TEXT PRIMARY KEY, amount INTEGER NOT NULL)")?;
            Ok::<_, es::StoreError>(())
        })
        .await
        .unwrap();
    store
        .transaction(|tx| {
            tx.execute("INSERT INTO transfers VALUES ('t-1', 5)", [])?;
            tx.append("Account", "a-1", ExpectedVersion::NoStream, deposits(&[5]))?;
            Ok::<_, es::StoreError>(())
        })
        .await
        .unwrap();
    let counts = store
        .read(|c| {
            c.query_row(
                "SELECT (SELECT COUNT(*) FROM transfers), (SELECT COUNT(*) FROM es_events), (SELECT COUNT(*) FROM es_outbox)",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
            )
        })
        .await
        .unwrap();
    assert_eq!(counts, (1, 1, 1));
}

#[tokio::test]
async fn a_rolled_back_transaction_records_nothing_and_delivers_nothing() {
    let store = store().await;
    store
        .transaction(|tx| tx.execute_batch("CREATE TABLE transfers (id TEXT)").map_err(es::StoreError::from))
        .await
        .unwrap();
    let outcome: Result<(), Box<dyn std::error::Error + Send + Sync>> = store
        .transaction(|tx| {
            tx.execute("INSERT INTO transfers VALUES ('t-1')", [])?;
            tx.append("Account", "a-1", ExpectedVersion::NoStream, deposits(&[1, 2]))?;
            Err("the business rule said no".into())
        })
        .await;
    assert_eq!(outcome.unwrap_err().to_string(), "the business rule said no");
    // A panic inside the transaction rolls back too, and the store keeps working.
    let panicked: Result<(), es::StoreError> = store
        .transaction(|tx| {
            tx.append("Account", "a-2", ExpectedVersion::NoStream, deposits(&[1]))?;
            panic!("bug in user code");
        })
        .await;
    assert!(panicked.unwrap_err().to_string().contains("bug in user code"));
    let counts = store
        .read(|c| {
            c.query_row("SELECT (SELECT COUNT(*) FROM transfers), (SELECT COUNT(*) FROM es_events), (SELECT COUNT(*) FROM es_outbox)", [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })
        })
        .await
        .unwrap();
    assert_eq!(counts, (0, 0, 0));
    let sink = Recording::default();
    let mut relay = Relay::new(store.clone(), sink.clone(), fast_options());
    assert_eq!(drain(&mut relay).await.delivered, 0);
    assert!(sink.got.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_relay_delivers_everything_once_in_stream_order_and_empties_the_outbox() {
    let store = store().await;
    for round in 0..5u64 {
        for stream in ["a", "b", "c"] {
            let expected = if round == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(round * 3) };
            store.append("Account", stream, expected, deposits(&[1, 2, 3])).await.unwrap();
        }
    }
    let sink = Recording::default();
    let mut relay = Relay::new(store.clone(), sink.clone(), fast_options());
    let report = drain(&mut relay).await;
    assert_eq!(report.delivered, 45);
    let got = sink.got.lock().unwrap().clone();
    assert_eq!(got.len(), 45);
    let positions: Vec<u64> = got.iter().map(|e| e.cursor.position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "not in commit order: {positions:?}");
    for (_, versions) in versions_by_stream(&got) {
        assert_eq!(versions, (1..=15).collect::<Vec<_>>());
    }
    let status = store.status().await.unwrap();
    assert_eq!((status.pending, status.parked.len()), (0, 0));
}

#[tokio::test]
async fn a_failing_row_is_retried_then_parked_and_halts_only_its_stream() {
    let store = store().await;
    store.append("Account", "bad", ExpectedVersion::NoStream, deposits(&[1, 2])).await.unwrap();
    store.append("Account", "good", ExpectedVersion::NoStream, deposits(&[1, 2])).await.unwrap();
    store.append("Account", "bad", ExpectedVersion::Exact(2), deposits(&[3])).await.unwrap();
    let sink = Recording::default();
    sink.failing.lock().unwrap().push("bad".into());
    let mut relay = Relay::new(store.clone(), sink.clone(), fast_options());
    let report = drain(&mut relay).await;
    assert_eq!(report.delivered, 2);
    assert_eq!(report.parked, 1);
    assert_eq!(report.failed, 3, "three attempts before parking");

    let got = sink.got.lock().unwrap().clone();
    assert!(got.iter().all(|e| e.stream_id == "good"));
    let status = store.status().await.unwrap();
    assert_eq!(status.pending, 3, "the parked row and the two behind it stay");
    let [parked] = status.parked.as_slice() else { panic!("expected one parked row: {status:?}") };
    assert_eq!((parked.stream_id.as_str(), parked.attempts), ("bad", 3));
    assert_eq!(parked.last_error, "refusing bad v1");
    assert!(status.oldest_pending.is_some());

    // Later appends to other streams keep flowing past the parked row.
    store.append("Account", "good", ExpectedVersion::Exact(2), deposits(&[9])).await.unwrap();
    assert_eq!(drain(&mut relay).await.delivered, 1);

    // Once the cause is fixed, re-queueing delivers the stream in order.
    sink.failing.lock().unwrap().clear();
    assert!(store.requeue(parked.position).await.unwrap());
    assert!(!store.requeue(parked.position).await.unwrap(), "only parked rows can be re-queued");
    assert_eq!(drain(&mut relay).await.delivered, 3);
    let got = sink.got.lock().unwrap().clone();
    assert_eq!(versions_by_stream(&got)["bad"], vec![1, 2, 3]);
    assert_eq!(store.status().await.unwrap().pending, 0);
}

#[tokio::test]
async fn a_permanent_failure_parks_at_once_and_skipping_lets_the_stream_go_on() {
    let store = store().await;
    store.append("Account", "bad", ExpectedVersion::NoStream, deposits(&[1, 2])).await.unwrap();
    let sink = Recording { permanent: true, ..Recording::default() };
    sink.failing.lock().unwrap().push("bad".into());
    let mut relay = Relay::new(store.clone(), sink.clone(), fast_options());
    let report = drain(&mut relay).await;
    assert_eq!((report.failed, report.parked, report.delivered), (1, 1, 0));
    let parked = store.status().await.unwrap().parked;
    assert_eq!(parked.len(), 1);

    sink.failing.lock().unwrap().clear();
    assert!(store.skip(parked[0].position, "known bad event, compensated by hand".into()).await.unwrap());
    assert_eq!(drain(&mut relay).await.delivered, 1);
    let got = sink.got.lock().unwrap().clone();
    assert_eq!(got.iter().map(|e| e.stream_version).collect::<Vec<_>>(), vec![2]);
    let reason: String = store.read(|c| c.query_row("SELECT reason FROM es_skipped", [], |r| r.get(0))).await.unwrap();
    assert_eq!(reason, "known bad event, compensated by hand");
}

#[tokio::test]
async fn an_unreadable_row_written_behind_the_librarys_back_is_parked_and_the_rest_flows() {
    let store = store().await;
    store.append("Account", "a", ExpectedVersion::NoStream, deposits(&[1])).await.unwrap();
    store
        .transaction(|tx| {
            tx.execute_batch(
                "INSERT INTO es_events (event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload)
                 VALUES (x'0102', 'Account', 'broken', 1, 'Deposited', 1, 0, NULL, '{}');
                 INSERT INTO es_outbox (position, stream_type, stream_id) VALUES (last_insert_rowid(), 'Account', 'broken');",
            )
            .map_err(es::StoreError::from)
        })
        .await
        .unwrap();
    store.append("Account", "b", ExpectedVersion::NoStream, deposits(&[1])).await.unwrap();
    let sink = Recording::default();
    let mut relay = Relay::new(store.clone(), sink.clone(), fast_options());
    let report = drain(&mut relay).await;
    assert_eq!((report.delivered, report.parked), (2, 1));
    let parked = store.status().await.unwrap().parked;
    assert_eq!(parked[0].stream_id, "broken");
    assert!(parked[0].last_error.contains("event id is 2 bytes"), "{}", parked[0].last_error);
}

#[tokio::test]
async fn appends_wake_the_relay_long_before_its_poll_interval() {
    let store = store().await;
    let (sink, mut received) = ChannelSink::new(16);
    let options = RelayOptions { poll_interval: Duration::from_secs(30), ..fast_options() };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay = tokio::spawn(Relay::new(store.clone(), sink, options).run(async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(100)).await;
    store.append("Account", "a", ExpectedVersion::NoStream, deposits(&[1])).await.unwrap();
    let relayed =
        tokio::time::timeout(Duration::from_secs(5), received.recv()).await.expect("woken by the append").unwrap();
    assert_eq!(relayed.event.stream_id, "a");
    assert_eq!(relayed.lease_generation, es::LeaseGeneration::new(1), "the first holder of the lease");
    stop.send(()).unwrap();
    let report = relay.await.unwrap();
    assert_eq!(report.delivered, 1);
}

/// Counts deliveries in flight across relays, remembering the most ever at once.
#[derive(Clone, Default)]
struct Overlap {
    in_flight: Arc<Mutex<HashMap<uuid::Uuid, u32>>>,
    overlapped: Arc<Mutex<bool>>,
    delivered: Arc<Mutex<Vec<uuid::Uuid>>>,
}

impl Sink for Overlap {
    async fn deliver(&self, events: &[StoredEvent], _lease: es::LeaseGeneration) -> Result<(), SinkError> {
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            for event in events {
                let n = in_flight.entry(event.event_id).or_default();
                *n += 1;
                if *n > 1 {
                    *self.overlapped.lock().unwrap() = true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let mut in_flight = self.in_flight.lock().unwrap();
        for event in events {
            *in_flight.get_mut(&event.event_id).unwrap() -= 1;
        }
        self.delivered.lock().unwrap().extend(events.iter().map(|e| e.event_id));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_on_one_file_never_deliver_a_row_at_the_same_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let first = SqliteStore::open(&path).await.unwrap();
    let second = SqliteStore::open(&path).await.unwrap();
    for i in 0..20 {
        first.append("Account", &format!("s{i}"), ExpectedVersion::NoStream, deposits(&[1, 2, 3, 4, 5])).await.unwrap();
    }
    let sink = Overlap::default();
    let options = |owner: &str| RelayOptions { owner: owner.into(), batch_size: 8, ..fast_options() };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let run = |store: SqliteStore, owner: &str| {
        let mut stopped = stopped.clone();
        tokio::spawn(Relay::new(store, sink.clone(), options(owner)).run(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }))
    };
    let (a, b) = (run(first.clone(), "relay-a"), run(second.clone(), "relay-b"));
    for _ in 0..500 {
        if first.status().await.unwrap().pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert!(!*sink.overlapped.lock().unwrap(), "a row was in flight in two relays at once");
    assert_eq!(a.delivered + b.delivered, 100);
    let mut delivered = sink.delivered.lock().unwrap().clone();
    delivered.sort();
    delivered.dedup();
    assert_eq!(delivered.len(), 100);
}

#[tokio::test]
async fn another_relay_takes_over_when_the_lease_holder_dies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.append("Account", "a", ExpectedVersion::NoStream, deposits(&[1])).await.unwrap();
    let lease = Duration::from_millis(300);
    // The first relay takes the lease and dies without releasing it.
    let mut dead =
        Relay::new(store.clone(), Recording::default(), RelayOptions { owner: "dead".into(), lease, ..fast_options() });
    assert_eq!(dead.run_once().await.unwrap().delivered, 1);
    drop(dead);
    store.append("Account", "a", ExpectedVersion::Exact(1), deposits(&[2])).await.unwrap();
    let sink = Recording::default();
    let mut heir =
        Relay::new(store.clone(), sink.clone(), RelayOptions { owner: "heir".into(), lease, ..fast_options() });
    assert_eq!(heir.run_once().await.unwrap().delivered, 0, "the lease is still held");
    tokio::time::sleep(lease + Duration::from_millis(50)).await;
    assert_eq!(heir.run_once().await.unwrap().delivered, 1, "taken over after the lease expired");
}

#[tokio::test]
async fn the_json_lines_sink_writes_one_synced_line_per_event() {
    let store = store().await;
    store.append("Account", "a", ExpectedVersion::NoStream, deposits(&[1, 2])).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    std::fs::write(&path, "{\"torn\":").unwrap();
    let mut relay = Relay::new(store.clone(), JsonLinesSink::open(&path).unwrap(), fast_options());
    assert_eq!(drain(&mut relay).await.delivered, 2);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], "{\"torn\":", "a torn line stays on its own");
    let line: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(line["stream_version"], 2);
    assert_eq!(line["event_type"], "Deposited");
    assert_eq!(line["payload"]["amount"], 2);
}

#[tokio::test]
async fn an_append_that_fails_halfway_leaves_nothing_even_if_the_transaction_goes_on() {
    let store = store().await;
    let events = deposits(&[1, 2]);
    store.append("Account", "taken", ExpectedVersion::NoStream, events[1..].to_vec()).await.unwrap();
    let outcome = store
        .transaction(move |tx| {
            // The second event's id is taken: the append fails after writing the first.
            let error = tx.append("Account", "s", ExpectedVersion::NoStream, events).unwrap_err();
            assert!(matches!(error, es::StoreError::DuplicateEventId { .. }), "{error}");
            // The caller treats it as done and commits the rest of its work.
            Ok::<_, es::StoreError>(())
        })
        .await;
    outcome.unwrap();
    assert!(store.read_stream("Account", "s", 1).await.unwrap().is_empty(), "half an append was committed");
    assert_eq!(store.status().await.unwrap().pending, 1);
}

#[tokio::test]
async fn extreme_relay_options_do_not_panic() {
    let store = store().await;
    store.append("Account", "a", ExpectedVersion::NoStream, deposits(&[1])).await.unwrap();
    let options = RelayOptions {
        poll_interval: Duration::MAX,
        backoff_base: Duration::MAX,
        backoff_max: Duration::MAX,
        delivery_timeout: Duration::MAX,
        lease: Duration::MAX,
        max_attempts: 0,
        ..RelayOptions::default()
    };
    let sink = Recording::default();
    sink.failing.lock().unwrap().push("a".into());
    let mut relay = Relay::new(store.clone(), sink, options);
    let report = relay.run_once().await.unwrap();
    assert_eq!((report.failed, report.parked), (1, 1), "at least one attempt, then parked");
}

#[tokio::test]
async fn a_version_zero_written_behind_the_librarys_back_is_corrupt_not_a_panic() {
    let store = store().await;
    store
        .transaction(|tx| {
            tx.execute_batch(
                "INSERT INTO es_events (event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload)
                 VALUES (randomblob(16), 'Account', 'zero', 0, 'Deposited', 1, 0, NULL, '{\"amount\":1}');
                 INSERT INTO es_outbox (position, stream_type, stream_id) VALUES (last_insert_rowid(), 'Account', 'zero');",
            )
            .map_err(es::StoreError::from)
        })
        .await
        .unwrap();
    let mut relay = Relay::new(store.clone(), Recording::default(), fast_options());
    assert_eq!(drain(&mut relay).await.parked, 1);
    let parked = store.status().await.unwrap().parked;
    assert!(parked[0].last_error.contains("versions start at 1"), "{}", parked[0].last_error);
}

// ---- Fencing: the lease's generation ----

#[tokio::test]
async fn a_stale_lease_generation_cannot_acknowledge_or_record_failures() {
    fencing::a_stale_generation_cannot_acknowledge_or_record_failures(&store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_frozen_past_its_lease_is_refused_and_its_batch_delivered_again() {
    fencing::a_relay_frozen_past_its_lease_is_refused_and_its_batch_delivered_again(store().await).await;
}

/// A database written before the lease had a generation (schema version 2, a lease
/// row left behind by a relay) opens, is migrated, and fences from then on.
#[tokio::test]
async fn a_database_from_before_lease_generations_is_migrated_and_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store.append("Account", "a", ExpectedVersion::NoStream, deposits(&[1, 2])).await.unwrap();
    }
    // Back to the layout of version 2: migrations 1 and 2 are never edited, so this
    // is exactly what such a database holds.
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "ALTER TABLE es_relay_lease DROP COLUMN generation;
                 DROP TABLE es_views;
                 DROP TABLE es_commands;
                 DROP TABLE es_subscriptions;
                 DELETE FROM es_schema WHERE version > 2;
                 INSERT INTO es_relay_lease (id, owner, expires_at) VALUES (1, 'relay-of-old', 0);",
            )
            .unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let version: i64 =
        store.read(|c| c.query_row("SELECT MAX(version) FROM es_schema", [], |r| r.get(0))).await.unwrap();
    assert_eq!(version, 6);
    let generation = store.acquire_lease("new", Duration::from_secs(5)).await.unwrap().expect("the old lease expired");
    assert_eq!(generation, es::LeaseGeneration::new(1), "the old lease row counts as generation 0");
    let (sink, mut received) = ChannelSink::new(16);
    let mut relay = Relay::new(store.clone(), sink, RelayOptions { owner: "new".into(), ..fast_options() });
    assert_eq!(relay.run_once().await.unwrap().delivered, 2);
    assert_eq!(received.recv().await.unwrap().lease_generation, generation);
    assert_eq!(store.status().await.unwrap().pending, 0);
}
