//! The relay to NATS JetStream, against a running server: every event arrives once
//! and in per-stream order, also when relay processes are killed mid-stream; an
//! unreachable broker loses nothing and parks only after the configured attempts; an
//! event larger than the server's max payload is parked at once.
//!
//! The server is read from `ES_TEST_NATS_URL` (default `127.0.0.1:4222`) and must
//! have JetStream enabled (`nats-server -js`). These tests fail, never skip, when it
//! cannot be reached. Each test creates its own JetStream stream and deletes it.

mod nats;
mod support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer;
use futures_util::StreamExt;

use es::nats::{JetStreamSink, SubjectLayout};
use es::relay::Outbox;
use es::sqlite::SqliteStore;
use es::{
    EventStore, ExpectedVersion, IdSource, Metadata, NewEvent, RandomIds, Relay, RelayOptions, StoredEvent, Timestamp,
};
use nats::{Received, TestStream, connect};
use support::process::{child_role, rerun_as_child};
use support::{AccountEvent, Note};

const CHILD_DB_ENV: &str = "ES_NATS_RELAY_CHILD_DB";
const CHILD_PREFIX_ENV: &str = "ES_NATS_RELAY_CHILD_PREFIX";

/// `received` holds each of `events` exactly once, each stream's in version order,
/// with the headers and body the sink promises.
fn assert_exactly_once_in_order(prefix: &str, received: &[Received], events: &[StoredEvent]) {
    assert_exactly_once_in_order_on(
        &|event| format!("{prefix}.{}", event.stream_type.replace('.', "_")),
        received,
        events,
    );
}

/// The same, with each event on the subject `subject_of` names.
fn assert_exactly_once_in_order_on(
    subject_of: &dyn Fn(&StoredEvent) -> String,
    received: &[Received],
    events: &[StoredEvent],
) {
    let by_id: HashMap<String, &StoredEvent> = events.iter().map(|e| (e.event_id.to_string(), e)).collect();
    assert_eq!(by_id.len(), events.len());
    let mut seen = HashSet::new();
    let mut last_version: HashMap<(String, String), u64> = HashMap::new();
    for message in received {
        let id = message.header("Es-Event-Id");
        assert_eq!(message.header("Nats-Msg-Id"), id, "Nats-Msg-Id must be the event id");
        let event = by_id.get(id).unwrap_or_else(|| panic!("message for unknown event {id}"));
        assert!(seen.insert(id.to_owned()), "event {id} reached the stream twice");
        let expected = [
            ("Es-Stream-Type", event.stream_type.clone()),
            ("Es-Stream-Id", event.stream_id.clone()),
            ("Es-Stream-Version", event.stream_version.to_string()),
            ("Es-Event-Type", event.event_type.clone()),
            ("Es-Schema-Version", event.schema_version.to_string()),
            ("Es-Occurred-At", event.occurred_at.as_unix_micros().to_string()),
            ("Es-Position", event.cursor.position.to_string()),
        ];
        for (name, value) in expected {
            assert_eq!(message.header(name), value, "header {name} of event {id}");
        }
        let generation = message.header("Es-Lease-Generation");
        assert!(generation.parse::<u64>().is_ok_and(|g| g >= 1), "Es-Lease-Generation {generation:?} of event {id}");
        assert_eq!(message.subject, subject_of(event), "subject of event {id}");
        assert_eq!(message.body, event.payload, "body of event {id}");
        let key = (event.stream_type.clone(), event.stream_id.clone());
        let previous = last_version.insert(key, event.stream_version).unwrap_or(0);
        assert_eq!(
            event.stream_version,
            previous + 1,
            "{}/{} arrived out of order: v{} after v{previous}",
            event.stream_type,
            event.stream_id,
            event.stream_version
        );
    }
    assert_eq!(seen.len(), events.len(), "{} of {} events reached the stream", seen.len(), events.len());
}

fn deposit(amount: u64) -> NewEvent {
    NewEvent::encode(&AccountEvent::Deposited { amount }, RandomIds.next_id(), Timestamp::EPOCH, Metadata::default())
        .unwrap()
}

async fn all_events(store: &SqliteStore) -> Vec<StoredEvent> {
    store.read_all(es::Cursor::START, usize::MAX).await.unwrap()
}

/// Runs passes until nothing is pending (or panics after `limit`).
async fn drain<S: es::Sink>(relay: &mut Relay<SqliteStore, S>, limit: Duration) {
    let started = Instant::now();
    loop {
        let status = relay.outbox().status().await.unwrap();
        if status.pending == 0 {
            return;
        }
        assert!(status.parked.is_empty(), "rows were parked: {:?}", status.parked);
        assert!(started.elapsed() < limit, "the relay did not drain the outbox in {limit:?}: {status:?}");
        let report = relay.run_once().await.unwrap();
        if report.delivered == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn fast_options() -> RelayOptions {
    RelayOptions {
        batch_size: 16,
        poll_interval: Duration::from_millis(10),
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        delivery_timeout: Duration::from_secs(5),
        ..RelayOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_published_once_in_stream_order_with_its_headers() {
    let client = connect().await;
    let stream = TestStream::create(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db")).await.unwrap();

    // Three streams, appended in interleaved transactions; one stream type holds a dot,
    // which a subject token cannot.
    let streams = [("Account", "acc-1"), ("Account", "acc-2"), ("Bank.Account", "acc-1")];
    for round in 0..10_u64 {
        for (stream_type, id) in streams {
            let expected = if round == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(round * 3) };
            store.append(stream_type, id, expected, (1..=3).map(|i| deposit(round * 10 + i)).collect()).await.unwrap();
        }
    }
    let events = all_events(&store).await;
    assert_eq!(events.len(), 90);

    let mut relay =
        Relay::new(store.clone(), JetStreamSink::new(client.clone(), stream.prefix.clone()), fast_options());
    drain(&mut relay, Duration::from_secs(30)).await;
    // A further pass finds nothing and publishes nothing.
    assert_eq!(relay.run_once().await.unwrap(), es::RelayReport::default());

    assert_eq!(stream.stored_messages().await, 90);
    let received = stream.read_all().await;
    assert_exactly_once_in_order(&stream.prefix, &received, &events);
    assert_eq!(received.iter().filter(|m| m.subject == format!("{}.Bank_Account", stream.prefix)).count(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_stream_subjects_let_a_consumer_follow_one_entity() {
    let client = connect().await;
    let stream = TestStream::create(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db")).await.unwrap();

    // Ids that a lossy mapping would merge: a dot, a space, and the escape of a dot.
    let streams = [("Account", "acc.1"), ("Account", "acc 1"), ("Account", "acc_2E1"), ("Bank.Account", "acc.1")];
    for round in 0..5_u64 {
        for (stream_type, id) in streams {
            let expected = if round == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(round * 2) };
            store.append(stream_type, id, expected, (1..=2).map(|i| deposit(round * 10 + i)).collect()).await.unwrap();
        }
    }
    let events = all_events(&store).await;
    let sink = JetStreamSink::new(client.clone(), stream.prefix.clone()).with_layout(SubjectLayout::PerStream);
    let subjects: HashSet<String> = streams.iter().map(|(t, id)| sink.subject(t, id)).collect();
    assert_eq!(subjects.len(), streams.len(), "two streams share a subject: {subjects:?}");
    let mut relay = Relay::new(store.clone(), sink.clone(), fast_options());
    drain(&mut relay, Duration::from_secs(30)).await;
    let received = stream.read_all().await;
    assert_exactly_once_in_order_on(&|event| sink.subject(&event.stream_type, &event.stream_id), &received, &events);

    // A consumer filtered on one entity's subject sees exactly that stream, in order.
    let subject = sink.subject("Account", "acc.1");
    let consumer = stream
        .stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subject.clone(),
            deliver_policy: consumer::DeliverPolicy::All,
            ..consumer::pull::OrderedConfig::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut versions = Vec::new();
    while versions.len() < 10 {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next()).await.unwrap().unwrap().unwrap();
        let message = Received::from_message(&message);
        assert_eq!((message.header("Es-Stream-Type"), message.header("Es-Stream-Id")), ("Account", "acc.1"));
        versions.push(message.header("Es-Stream-Version").parse::<u64>().unwrap());
    }
    assert_eq!(versions, (1..=10).collect::<Vec<_>>());
    assert!(tokio::time::timeout(Duration::from_millis(200), messages.next()).await.is_err(), "more than one stream");
}

// ---- Killing relay processes mid-stream ----

const CRASH_STREAMS: u64 = 10;
const CRASH_EVENTS_PER_STREAM: u64 = 150;
const CRASH_KILLS: usize = 8;
/// A killed relay keeps the lease this long; the next one waits it out.
const CRASH_LEASE: Duration = Duration::from_millis(300);

fn crash_options() -> RelayOptions {
    RelayOptions {
        batch_size: 8,
        poll_interval: Duration::from_millis(10),
        lease: CRASH_LEASE,
        // Under half the lease. A slow machine may time out a delivery now and then:
        // that is a retry, never a parked row.
        delivery_timeout: Duration::from_millis(140),
        max_attempts: 1_000,
        backoff_base: Duration::from_millis(2),
        backoff_max: Duration::from_millis(20),
        ..RelayOptions::default()
    }
}

const CRASH_TEST: &str = "killing_relay_processes_mid_stream_publishes_every_event_once_in_order";

/// The child's workload: relay the database named by `ES_NATS_RELAY_CHILD_DB` to
/// JetStream until killed.
fn relay_workload(db: String) {
    let prefix = std::env::var(CHILD_PREFIX_ENV).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let store = SqliteStore::open(&db).await.unwrap();
        let relay = Relay::new(store, JetStreamSink::new(connect().await, prefix), crash_options());
        relay.run(std::future::pending()).await;
    });
}

fn spawn_relay_child(db: &Path, prefix: &str) -> std::process::Child {
    rerun_as_child(CRASH_TEST, CHILD_DB_ENV, db)
        .env(CHILD_PREFIX_ENV, prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Kills the child however the test ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill(); // SIGKILL
        let _ = self.0.wait();
    }
}

#[test]
fn killing_relay_processes_mid_stream_publishes_every_event_once_in_order() {
    if let Some(db) = child_role(CHILD_DB_ENV) {
        return relay_workload(db);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(relays_killed_mid_stream());
}

#[allow(clippy::too_many_lines, reason = "one scenario, checked step by step")]
async fn relays_killed_mid_stream() {
    let client = connect().await;
    let stream = TestStream::create(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let db: PathBuf = dir.path().join("events.db");
    let store = SqliteStore::open(&db).await.unwrap();

    // Streams interleaved in commit order, a few events per transaction.
    for chunk in 0..CRASH_EVENTS_PER_STREAM / 5 {
        for s in 0..CRASH_STREAMS {
            let expected = if chunk == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(chunk * 5) };
            store.append("Account", &format!("acc-{s}"), expected, (1..=5).map(deposit).collect()).await.unwrap();
        }
    }
    let events = all_events(&store).await;
    let total = events.len() as u64;
    assert_eq!(total, CRASH_STREAMS * CRASH_EVENTS_PER_STREAM);

    // Every publish that reaches the server, duplicates included: a core subscriber
    // sees what JetStream's duplicate window then drops.
    let publishes: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let mut subscriber = client.subscribe(format!("{}.>", stream.prefix)).await.unwrap();
    client.flush().await.unwrap();
    let counting = {
        let publishes = Arc::clone(&publishes);
        tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                let id = message.headers.as_ref().and_then(|h| h.get("Es-Event-Id")).unwrap().to_string();
                *publishes.lock().unwrap().entry(id).or_default() += 1;
            }
        })
    };

    let mut seed = support::process::seed(CRASH_TEST);
    let mut next_random = move |below: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % below
    };
    let mut delivered_at_kill = Vec::new();
    for round in 0..CRASH_KILLS {
        let before = store.status().await.unwrap().pending;
        let mut child = Killed(spawn_relay_child(&db, &stream.prefix));
        // Kill at a random point once the child is delivering: after it has delivered
        // a random number of rows, plus a random few milliseconds.
        let target = 10 + next_random(90);
        let started = Instant::now();
        loop {
            let pending = store.status().await.unwrap().pending;
            if before - pending >= target {
                break;
            }
            assert!(child.0.try_wait().unwrap().is_none(), "the relay child died by itself in round {round}");
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "round {round}: the child delivered {} rows in 20 s",
                before - pending
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_micros(next_random(5_000))).await;
        assert!(child.0.try_wait().unwrap().is_none(), "the relay child died by itself in round {round}");
        drop(child);

        // Whatever the outbox let go of is in JetStream: acknowledged means stored.
        let status = store.status().await.unwrap();
        assert!(status.parked.is_empty(), "rows were parked: {:?}", status.parked);
        assert!(status.pending > 0, "round {round}: the child finished the outbox before it was killed");
        let delivered = total - status.pending;
        let stored = stream.stored_messages().await;
        assert!(stored >= delivered, "round {round}: {delivered} rows left the outbox, JetStream holds {stored}");
        delivered_at_kill.push(delivered);
    }

    // Finish the rest in this process, once the last child's lease has expired.
    tokio::time::sleep(CRASH_LEASE + Duration::from_millis(50)).await;
    let mut relay =
        Relay::new(store.clone(), JetStreamSink::new(client.clone(), stream.prefix.clone()), crash_options());
    drain(&mut relay, Duration::from_mins(1)).await;

    assert_eq!(stream.stored_messages().await, total, "JetStream must hold every event exactly once");
    let received = stream.read_all().await;
    assert_exactly_once_in_order(&stream.prefix, &received, &events);

    // Let the core subscriber catch up, then count the redeliveries the window dropped.
    client.flush().await.unwrap();
    let waiting = Instant::now();
    while (publishes.lock().unwrap().len() as u64) < total && waiting.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    counting.abort();
    let publishes = publishes.lock().unwrap();
    assert_eq!(publishes.len() as u64, total, "every event was published at least once");
    let sent: u64 = publishes.values().map(|&n| u64::from(n)).sum();
    println!(
        "{CRASH_KILLS} relay processes killed (outbox delivered at each kill: {delivered_at_kill:?}); \
         {total} events, {sent} publishes reached the server, {} duplicates dropped by the duplicate window",
        sent - total
    );
}

// ---- An unreachable broker ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_retries_loses_nothing_and_parks_after_max_attempts() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let offline = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(format!("127.0.0.1:{port}"))
        .await
        .expect("with retry_on_initial_connect the client exists without a server");

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db")).await.unwrap();
    for id in ["acc-a", "acc-b"] {
        store.append("Account", id, ExpectedVersion::NoStream, (1..=3).map(deposit).collect()).await.unwrap();
    }
    let events = all_events(&store).await;

    let delivery_timeout = Duration::from_millis(150);
    let options = RelayOptions {
        max_attempts: 3,
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(2),
        delivery_timeout,
        owner: "offline-relay".to_owned(),
        ..fast_options()
    };
    let prefix = format!("es_test_{}", uuid::Uuid::now_v7().simple());
    let mut relay = Relay::new(store.clone(), JetStreamSink::new(offline, prefix.clone()), options);
    let started = Instant::now();
    for attempt in 1..=3_u32 {
        tokio::time::sleep(Duration::from_millis(10)).await; // past the retry time
        let report = relay.run_once().await.unwrap();
        // The first row of each stream is tried; the rows behind it wait.
        assert_eq!(report.delivered, 0);
        assert_eq!(report.failed, 2, "attempt {attempt}: {report:?}");
        let status = store.status().await.unwrap();
        assert_eq!(status.pending, 6, "attempt {attempt}: nothing may leave the outbox");
        if attempt < 3 {
            assert_eq!(report.parked, 0, "parked after {attempt} attempts");
            assert!(status.parked.is_empty(), "parked after {attempt} attempts: {:?}", status.parked);
            assert_eq!(status.retrying, 2);
        } else {
            assert_eq!(report.parked, 2);
            let firsts: Vec<u64> = events.iter().filter(|e| e.stream_version == 1).map(|e| e.cursor.position).collect();
            assert_eq!(status.parked.iter().map(|p| p.position).collect::<Vec<_>>(), firsts);
            for parked in &status.parked {
                assert_eq!(parked.attempts, 3);
                assert!(
                    parked.last_error.contains("not connected") || parked.last_error.contains("timed out"),
                    "unexpected error text: {}",
                    parked.last_error
                );
            }
        }
    }
    // Parked rows halt their streams: nothing more is tried.
    assert_eq!(relay.run_once().await.unwrap(), es::RelayReport::default());
    let elapsed = started.elapsed();
    assert!(elapsed < delivery_timeout * 20, "the retries took {elapsed:?}");

    // Nothing was lost: re-queued and relayed to a reachable broker (by a relay that
    // takes over the lease the first one gives up), every event arrives once and in
    // order.
    store.release_lease("offline-relay").await.unwrap();
    let client = connect().await;
    let stream = TestStream::create(&client).await;
    for parked in store.status().await.unwrap().parked {
        assert!(store.requeue(parked.position).await.unwrap());
    }
    let mut relay = Relay::new(store.clone(), JetStreamSink::new(client, stream.prefix.clone()), fast_options());
    drain(&mut relay, Duration::from_secs(30)).await;
    assert_exactly_once_in_order(&stream.prefix, &stream.read_all().await, &events);
}

// ---- An event larger than the server accepts ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_the_max_payload_is_parked_at_once_while_other_streams_flow() {
    let client = connect().await;
    let max_payload = client.server_info().max_payload;
    assert!(max_payload > 0, "the server announced no max payload");
    let stream = TestStream::create(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db")).await.unwrap();

    let huge = NewEvent::encode(
        &AccountEvent::Noted(Note { text: "x".repeat(max_payload), big: 0, small: 0, ratio: 0.0, tiny: 0.0 }),
        RandomIds.next_id(),
        Timestamp::EPOCH,
        Metadata::default(),
    )
    .unwrap();
    store.append("Account", "big", ExpectedVersion::NoStream, vec![deposit(1)]).await.unwrap();
    store.append("Account", "small", ExpectedVersion::NoStream, vec![deposit(1), deposit(2)]).await.unwrap();
    store.append("Account", "big", ExpectedVersion::Exact(1), vec![huge, deposit(3)]).await.unwrap();
    store.append("Account", "small", ExpectedVersion::Exact(2), vec![deposit(3), deposit(4)]).await.unwrap();
    let events = all_events(&store).await;
    let oversized = events.iter().find(|e| e.stream_id == "big" && e.stream_version == 2).unwrap();

    let mut relay =
        Relay::new(store.clone(), JetStreamSink::new(client.clone(), stream.prefix.clone()), fast_options());
    let report = relay.run_once().await.unwrap();
    assert_eq!(report, es::RelayReport { delivered: 5, failed: 1, parked: 1 });
    // Nothing left to try: the big stream waits behind its parked row.
    assert_eq!(relay.run_once().await.unwrap(), es::RelayReport::default());

    let status = store.status().await.unwrap();
    assert_eq!(status.pending, 2, "the oversized event and the one behind it stay");
    assert_eq!(status.parked.len(), 1);
    let parked = &status.parked[0];
    assert_eq!((parked.position, parked.attempts), (oversized.cursor.position, 1));
    assert!(parked.last_error.contains("max payload"), "unexpected error text: {}", parked.last_error);

    let delivered: Vec<StoredEvent> =
        events.iter().filter(|e| e.stream_id == "small" || e.stream_version == 1).cloned().collect();
    assert_eq!(delivered.len(), 5);
    assert_exactly_once_in_order(&stream.prefix, &stream.read_all().await, &delivered);
    // The connection survived: the client still publishes.
    assert_eq!(client.connection_state(), async_nats::connection::State::Connected);
}

// ---- A value a NATS header cannot carry ----

/// Stream ids are free text to the store, but a NATS header value cannot hold a line
/// break, and async-nats panics on one. Such an event must not take the relay down
/// (which would halt every stream): it is delivered somehow or parked, and the other
/// streams flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_id_with_a_line_break_does_not_take_the_relay_down() {
    let client = connect().await;
    let stream = TestStream::create(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db")).await.unwrap();
    store.append("Account", "acc\r\nEs-Stream-Id: forged", ExpectedVersion::NoStream, vec![deposit(1)]).await.unwrap();
    store.append("Account", "fine", ExpectedVersion::NoStream, vec![deposit(1), deposit(2)]).await.unwrap();
    let events = all_events(&store).await;

    let mut relay =
        Relay::new(store.clone(), JetStreamSink::new(client.clone(), stream.prefix.clone()), fast_options());
    for _ in 0..3 {
        relay.run_once().await.unwrap();
    }
    let status = store.status().await.unwrap();
    let received = stream.read_all().await;
    let fine: Vec<StoredEvent> = events.iter().filter(|e| e.stream_id == "fine").cloned().collect();
    let delivered_fine: Vec<Received> =
        received.into_iter().filter(|m| m.headers.get("Es-Stream-Id").is_some_and(|id| id == "fine")).collect();
    assert_exactly_once_in_order(&stream.prefix, &delivered_fine, &fine);
    // The odd event is parked with its reason, or was delivered; never lost.
    let stored = stream.stored_messages().await;
    assert!(
        status.pending == 0 && stored == 3
            || status.parked.len() == 1
                && status.parked[0].position == events[0].cursor.position
                && status.pending == 1,
        "status {status:?}, {stored} messages in JetStream"
    );
}
