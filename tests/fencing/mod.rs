//! Fencing of the outbox lease, written once and run against every backend with an
//! outbox: a relay whose lease generation is no longer current cannot acknowledge,
//! record failures or park, and a relay frozen past its lease is refused while the
//! holder delivers its batch again.

#![allow(dead_code, reason = "each test crate uses a different part")]

use std::collections::{HashMap, HashSet};
use std::pin::pin;
use std::time::Duration;

use es::relay::Outbox;
use es::sink::{ChannelSink, Relayed};
use es::{
    EventStore, ExpectedVersion, IdSource, LeaseGeneration, Metadata, NewEvent, RandomIds, Relay, RelayOptions,
    StoreError, StoredEvent, Timestamp,
};

use crate::support::AccountEvent;
use crate::support::faults::{DropOne, PauseAfter};

pub fn deposits(n: u64) -> Vec<NewEvent> {
    (1..=n)
        .map(|amount| {
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

fn assert_stale(outcome: Result<(), StoreError>, generation: LeaseGeneration, what: &str) {
    match outcome {
        Err(StoreError::StaleLease { generation: refused }) => assert_eq!(refused, generation, "{what}"),
        other => panic!("{what}: expected StaleLease for generation {generation}, got {other:?}"),
    }
}

/// The outbox hands out growing generations and refuses every write of a relay whose
/// generation is no longer current, writing nothing.
pub async fn a_stale_generation_cannot_acknowledge_or_record_failures<S: Outbox + EventStore>(store: &S) {
    let lease = Duration::from_millis(400);
    store.append("Account", "a", ExpectedVersion::NoStream, deposits(4)).await.unwrap();
    let positions: Vec<u64> = store.fetch(10, Timestamp::EPOCH).await.unwrap().iter().map(|p| p.position).collect();
    assert_eq!(positions.len(), 4);

    let first = store.acquire_lease("first", lease).await.unwrap().expect("a free lease is taken");
    assert_eq!(
        store.acquire_lease("first", lease).await.unwrap(),
        Some(first),
        "renewing a live lease keeps its generation"
    );
    assert_eq!(store.acquire_lease("second", lease).await.unwrap(), None, "the lease is held");

    // The first holder stops renewing; the second takes over once the lease expires.
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let second = store.acquire_lease("second", lease).await.unwrap().expect("an expired lease is taken");
    assert!(second > first, "taking the lease over must raise the generation: {first} then {second}");

    // Everything the first holder tries now is refused and changes nothing.
    assert_stale(store.acknowledge(positions.clone(), first).await, first, "acknowledge");
    assert_stale(store.record_failure(positions[0], 1, "boom".into(), None, first).await, first, "park");
    let retry_at = Some(Timestamp::from_unix_micros(i64::MAX / 2));
    assert_stale(store.record_failure(positions[1], 1, "boom".into(), retry_at, first).await, first, "retry later");
    let status = store.status().await.unwrap();
    assert_eq!((status.pending, status.retrying, status.parked.len()), (4, 0, 0), "a refused write wrote: {status:?}");

    // The holder's writes go through.
    store.acknowledge(vec![positions[0]], second).await.unwrap();
    store.record_failure(positions[1], 1, "boom".into(), retry_at, second).await.unwrap();
    let status = store.status().await.unwrap();
    assert_eq!((status.pending, status.retrying), (3, 1));

    // A release hands the lease on at once, under a higher generation; the releaser
    // is stale from then on.
    store.release_lease("second").await.unwrap();
    let third = store.acquire_lease("first", lease).await.unwrap().expect("a released lease is free");
    assert!(third > second, "{second} then {third}");
    assert_stale(store.acknowledge(vec![positions[2]], second).await, second, "acknowledge after release");
    // Taken again by the same owner after it expired: someone else may have held it
    // in between, so this is a new generation too.
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let fourth = store.acquire_lease("first", lease).await.unwrap().expect("its own expired lease");
    assert!(fourth > third, "{third} then {fourth}");
    assert_stale(store.acknowledge(vec![positions[2]], third).await, third, "acknowledge under an expired generation");
    store.acknowledge(vec![positions[2], positions[3]], fourth).await.unwrap();
    assert_eq!(store.status().await.unwrap().pending, 1, "only the row waiting for its retry is left");
}

fn options(owner: &str, lease: Duration) -> RelayOptions {
    RelayOptions {
        owner: owner.into(),
        batch_size: 8,
        lease,
        delivery_timeout: lease / 3,
        poll_interval: Duration::from_millis(10),
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        ..RelayOptions::default()
    }
}

/// Every event of `events` is in `received` at least once and, keeping each event's
/// first arrival, each stream's versions arrive as 1, 2, 3, …; returns how many
/// arrivals were repeats.
pub fn assert_complete_and_in_stream_order(received: &[StoredEvent], events: &[StoredEvent]) -> usize {
    let known: HashSet<uuid::Uuid> = events.iter().map(|e| e.event_id).collect();
    let mut seen = HashSet::new();
    let mut last: HashMap<(String, String), u64> = HashMap::new();
    for event in received {
        assert!(known.contains(&event.event_id), "an event that was never appended: {}", event.event_id);
        if !seen.insert(event.event_id) {
            continue;
        }
        let previous =
            last.insert((event.stream_type.clone(), event.stream_id.clone()), event.stream_version).unwrap_or(0);
        assert_eq!(
            event.stream_version,
            previous + 1,
            "{}/{} arrived out of order: v{} first arrived after v{previous}",
            event.stream_type,
            event.stream_id,
            event.stream_version
        );
    }
    let missing: Vec<&StoredEvent> = events.iter().filter(|e| !seen.contains(&e.event_id)).collect();
    assert!(missing.is_empty(), "{} events never arrived, the first {:?}", missing.len(), missing.first());
    received.len() - seen.len()
}

/// A relay frozen between its sink's answer and its acknowledgement for longer than
/// its lease (here: a task nobody polls) is refused when it wakes, while the relay
/// that took over delivers the frozen batch again, losing one message on the way.
/// Through a channel, every event arrives, each stream in order once repeats are
/// dropped.
pub async fn a_relay_frozen_past_its_lease_is_refused_and_its_batch_delivered_again<S>(store: S)
where
    S: Outbox + EventStore + Clone,
{
    let lease = Duration::from_millis(600);
    for round in 0..3_u64 {
        for stream in ["a", "b", "c", "d"] {
            let expected = if round == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(round * 3) };
            store.append("Account", stream, expected, deposits(3)).await.unwrap();
        }
    }
    let events = store.read_all(es::Cursor::START, usize::MAX).await.unwrap();
    assert_eq!(events.len(), 36);
    let (channel, mut received) = ChannelSink::new(1024);

    // The first relay delivers a batch, then freezes after its second delivery.
    let pausing = PauseAfter::new(channel.clone(), 2);
    let (paused, resume, held) = (pausing.paused.clone(), pausing.resume.clone(), pausing.held.clone());
    let mut frozen = Relay::new(store.clone(), pausing, options("frozen", lease));
    assert_eq!(frozen.run_once().await.unwrap().delivered, 8);
    let stale = frozen.lease_generation().expect("the first relay holds the lease");
    {
        let mut pass = pin!(frozen.run_once());
        tokio::select! {
            outcome = &mut pass => panic!("the second pass ended without reaching the pause: {outcome:?}"),
            () = paused.notified() => {}
        }
        // Nobody polls the pass now: the relay is frozen past its lease.
        tokio::time::sleep(lease + Duration::from_millis(100)).await;

        // Another relay takes over, and loses one message on the way.
        let dropping = DropOne::new(channel.clone(), 5);
        let lost = dropping.dropped.clone();
        let mut heir = Relay::new(store.clone(), dropping, options("heir", lease));
        let started = tokio::time::Instant::now();
        while store.status().await.unwrap().pending > 0 {
            assert!(started.elapsed() < Duration::from_secs(20), "the heir did not drain the outbox");
            heir.run_once().await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let current = heir.lease_generation().expect("the heir holds the lease");
        assert!(current > stale, "the heir's generation {current} must exceed {stale}");
        assert!(lost.lock().unwrap().is_some(), "the fault was never injected");

        // The frozen relay wakes: its sink answers, its acknowledgement is refused.
        resume.notify_one();
        match pass.await {
            Err(StoreError::StaleLease { generation }) => assert_eq!(generation, stale),
            other => panic!("a relay frozen past its lease acknowledged: {other:?}"),
        }
    }
    assert_eq!(frozen.lease_generation(), None, "a refused relay forgets its lease");
    assert_eq!(frozen.run_once().await.unwrap(), es::RelayReport::default(), "it waits while the heir holds the lease");
    drop(frozen);

    let mut arrivals: Vec<Relayed> = Vec::new();
    while let Ok(relayed) = received.try_recv() {
        arrivals.push(relayed);
    }
    let in_order: Vec<StoredEvent> = arrivals.iter().map(|r| r.event.clone()).collect();
    let repeats = assert_complete_and_in_stream_order(&in_order, &events);
    // The frozen batch reached the channel under the stale generation, and again from
    // the heir: the rows the stale relay could not acknowledge were delivered again.
    let held = held.lock().unwrap().clone();
    assert_eq!(held.len(), 8);
    for event in &held {
        let generations: HashSet<LeaseGeneration> =
            arrivals.iter().filter(|r| r.event.event_id == event.event_id).map(|r| r.lease_generation).collect();
        assert!(generations.contains(&stale), "{} did not arrive from the frozen relay", event.event_id);
        assert!(generations.iter().any(|g| *g > stale), "{} was not delivered again by the heir", event.event_id);
    }
    assert!(repeats >= held.len(), "{repeats} repeats");
}
