//! Relay processes frozen past their lease and killed while faults are injected into
//! publishing, shared by the sink-specific suites.
//!
//! Relay A freezes between its sink's answer and its acknowledgement (its sink wrapper
//! holds the delivery at that point and the parent SIGSTOPs the process) until its
//! lease has long expired. Relay B takes over, slowly, and loses one message on the
//! way (the sink-specific suite decides where: a wrapper, a TCP proxy). B is stopped
//! wherever it is, A is resumed with SIGCONT, and A's acknowledgement must be refused;
//! B is SIGKILLed mid-stream; A takes the lease back under a newer generation. Then A
//! is frozen again, at a random point of its deliveries this time, past its lease;
//! relay C finishes the outbox, and A wakes into C's lease (whatever it had in flight
//! lands late, or is refused). The suite then reads what its sink received and
//! checks order, completeness and generations.
//!
//! The children are this test binary running the same test again: `CHILD` names the
//! working directory, the other variables the child's name and faults. Each child
//! writes what it lived through to `report-<owner>` in that directory: `holds <g>`
//! when it holds a lease generation, `stale <g>` when the outbox refused it,
//! `dropped <event id>` when its fault fired, `error <text>` for anything else.

#![allow(dead_code, reason = "each test crate uses a different part")]

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use es::relay::Outbox;
use es::sqlite::SqliteStore;
use es::{EventStore, ExpectedVersion, LeaseGeneration, Relay, RelayOptions, Sink, SinkError, StoreError, StoredEvent};

use crate::fencing::deposits;
use crate::support::faults::DropOne;
use crate::support::process::{Killed, rerun_as_child};

pub const CHILD: &str = "ES_FENCED_CHILD";
const OWNER: &str = "ES_FENCED_OWNER";
const PAUSE: &str = "ES_FENCED_PAUSE_CALL";
const DROP: &str = "ES_FENCED_DROP_NTH";
const DELAY: &str = "ES_FENCED_DELAY_MS";

pub const LEASE: Duration = Duration::from_secs(1);
pub const STREAMS: u64 = 6;
pub const EVENTS_PER_STREAM: u64 = 30;

pub fn relay_options(owner: &str) -> RelayOptions {
    RelayOptions {
        owner: owner.to_owned(),
        batch_size: 8,
        lease: LEASE,
        // Under half the lease; long enough for a round trip on a busy machine, short
        // enough that a lost message is retried soon.
        delivery_timeout: Duration::from_millis(400),
        poll_interval: Duration::from_millis(10),
        max_attempts: 1_000,
        backoff_base: Duration::from_millis(2),
        backoff_max: Duration::from_millis(20),
        ..RelayOptions::default()
    }
}

pub fn database(dir: &Path) -> PathBuf {
    dir.join("events.db")
}

/// Appends the streams, interleaved in commit order, three events per transaction.
pub async fn seed(store: &SqliteStore) -> Vec<StoredEvent> {
    for chunk in 0..EVENTS_PER_STREAM / 3 {
        for s in 0..STREAMS {
            let expected = if chunk == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(chunk * 3) };
            store.append("Account", &format!("acc-{s}"), expected, deposits(3)).await.unwrap();
        }
    }
    let events = store.read_all(es::Cursor::START, usize::MAX).await.unwrap();
    assert_eq!(events.len() as u64, STREAMS * EVENTS_PER_STREAM);
    events
}

// ---- The child ----

/// The faults a child's sink injects around the real sink.
struct Faulty<S> {
    inner: DropOne<S>,
    /// Each delivery waits this long first: a slow broker.
    delay: Duration,
    /// The delivery (from 1) held between the sink's answer and the acknowledgement.
    pause_call: Option<u64>,
    calls: AtomicU64,
    dir: PathBuf,
    owner: String,
}

impl<S: Sink> Sink for Faulty<S> {
    async fn deliver(&self, events: &[StoredEvent], lease: LeaseGeneration) -> Result<(), SinkError> {
        tokio::time::sleep(self.delay).await;
        self.inner.deliver(events, lease).await?;
        if Some(self.calls.fetch_add(1, Ordering::SeqCst) + 1) == self.pause_call {
            // Tell the parent where we are, then hold this thread (not just this task)
            // until it says go: whatever the relay's timers say when the process
            // resumes, the delivery has answered and the acknowledgement comes next.
            let ids: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
            let marker = self.dir.join(format!("paused-{}", self.owner));
            let partial = marker.with_extension("partial");
            std::fs::write(&partial, format!("{lease}\n{}\n", ids.join("\n"))).unwrap();
            std::fs::rename(&partial, &marker).unwrap();
            let resume = self.dir.join(format!("resume-{}", self.owner));
            while !resume.exists() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(())
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|value| value.parse().unwrap_or_else(|_| panic!("{name}={value:?}")))
}

/// The child's work: relay the database in `dir` through the sink `make_sink` builds,
/// with the faults its environment names, until killed.
pub fn child<S, F>(dir: &Path, make_sink: impl FnOnce() -> F)
where
    S: Sink + 'static,
    F: Future<Output = S>,
{
    let owner = std::env::var(OWNER).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let report = Mutex::new(
            std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("report-{owner}"))).unwrap(),
        );
        let note = |line: String| {
            let mut file = report.lock().unwrap();
            file.write_all(format!("{line}\n").as_bytes()).unwrap();
            file.sync_data().unwrap();
        };
        let store = SqliteStore::open(database(dir)).await.unwrap();
        let sink = Faulty {
            inner: DropOne::new(make_sink().await, env_u64(DROP).unwrap_or(u64::MAX)),
            delay: Duration::from_millis(env_u64(DELAY).unwrap_or(0)),
            pause_call: env_u64(PAUSE),
            calls: AtomicU64::new(0),
            dir: dir.to_owned(),
            owner: owner.clone(),
        };
        let dropped = sink.inner.dropped.clone();
        let mut relay = Relay::new(store, sink, relay_options(&owner));
        let (mut held, mut told_drop) = (None, false);
        loop {
            let outcome = relay.run_once().await;
            if relay.lease_generation() != held {
                held = relay.lease_generation();
                if let Some(generation) = held {
                    note(format!("holds {generation}"));
                }
            }
            if !told_drop && let Some(event) = dropped.lock().unwrap().as_ref() {
                note(format!("dropped {}", event.event_id));
                told_drop = true;
            }
            match outcome {
                Ok(report) if report.delivered > 0 || report.failed > 0 => {}
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(StoreError::StaleLease { generation }) => note(format!("stale {generation}")),
                Err(error) => {
                    note(format!("error {error}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    });
}

// ---- The parent ----

/// What a child wrote about itself.
#[derive(Debug, Default)]
pub struct Report {
    pub held: Vec<LeaseGeneration>,
    pub refused: Vec<LeaseGeneration>,
    pub dropped: Option<uuid::Uuid>,
    pub errors: Vec<String>,
}

pub fn report(dir: &Path, owner: &str) -> Report {
    let text = std::fs::read_to_string(dir.join(format!("report-{owner}"))).unwrap_or_default();
    let mut report = Report::default();
    for line in text.lines() {
        let (what, value) = line.split_once(' ').unwrap_or((line, ""));
        let generation = || LeaseGeneration::new(value.parse().unwrap_or_else(|_| panic!("report line {line:?}")));
        match what {
            "holds" => report.held.push(generation()),
            "stale" => report.refused.push(generation()),
            "dropped" => report.dropped = Some(value.parse().unwrap()),
            _ => report.errors.push(line.to_owned()),
        }
    }
    report
}

/// How the parent starts a relay child: the suite adds its sink's settings.
pub type Spawn<'a> = &'a dyn Fn(std::process::Command) -> std::process::Command;

fn spawn(test: &str, dir: &Path, owner: &str, faults: &[(&str, String)], configure: Spawn<'_>) -> Killed {
    let mut command = rerun_as_child(test, CHILD, dir);
    command.env(OWNER, owner).stdout(Stdio::null()).stderr(Stdio::inherit());
    for (name, value) in faults {
        command.env(name, value);
    }
    Killed(configure(command).spawn().unwrap())
}

async fn wait_until<F: Future<Output = bool>>(what: &str, limit: Duration, mut done: impl FnMut() -> F) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What happened, for the suite's checks.
#[derive(Debug)]
pub struct Outcome {
    /// The generation A held when it froze, and the events of the frozen delivery.
    pub frozen: LeaseGeneration,
    pub held: Vec<uuid::Uuid>,
    pub a: Report,
    pub b: Report,
    pub c: Report,
}

/// Runs the scenario of the module docs on the seeded database in `dir`. `drop_nth`
/// is the message B's sink wrapper loses (`None` when the suite loses one elsewhere).
pub async fn freeze_kill_and_take_over(
    test: &str,
    dir: &Path,
    store: &SqliteStore,
    drop_nth: Option<u64>,
    configure_a: Spawn<'_>,
    configure_b: Spawn<'_>,
    configure_c: Spawn<'_>,
) -> Outcome {
    let total = store.status().await.unwrap().pending;
    // A is a little slow too, so that the parent can catch it mid-stream later.
    let a = spawn(test, dir, "relay-a", &[(PAUSE, "3".into()), (DELAY, "40".into())], configure_a);
    let marker = dir.join("paused-relay-a");
    wait_until("relay A to reach its pause", Duration::from_secs(30), || async { marker.exists() }).await;
    a.signal("STOP");
    let paused_at = std::fs::read_to_string(&marker).unwrap();
    let mut lines = paused_at.lines();
    let frozen = LeaseGeneration::new(lines.next().unwrap().parse().unwrap());
    let held: Vec<uuid::Uuid> = lines.map(|id| id.parse().unwrap()).collect();
    let pending_at_freeze = store.status().await.unwrap().pending;
    assert!(
        pending_at_freeze >= held.len() as u64 && pending_at_freeze < total,
        "A acknowledged what it delivered before its frozen delivery, and not that one: {pending_at_freeze} of {total} pending"
    );

    // Frozen past the lease; B takes over, slowly, losing a message on the way.
    tokio::time::sleep(LEASE + Duration::from_millis(200)).await;
    let mut faults = vec![(DELAY, "100".to_owned())];
    if let Some(nth) = drop_nth {
        faults.push((DROP, nth.to_string()));
    }
    let mut b = spawn(test, dir, "relay-b", &faults, configure_b);
    wait_until("relay B to deliver 40 rows", Duration::from_secs(30), || async {
        store.status().await.unwrap().pending + 40 <= pending_at_freeze
    })
    .await;
    assert!(b.is_alive(), "relay B died by itself");
    // B stops wherever it is, still holding the lease, so that it is surely killed
    // mid-stream below however long A takes to wake.
    b.signal("STOP");
    let pending_at_stop = store.status().await.unwrap().pending;
    assert!(pending_at_stop > 0, "relay B finished before it could be stopped mid-stream");

    // A wakes: its sink has answered, its acknowledgement must be refused.
    std::fs::write(dir.join("resume-relay-a"), "").unwrap();
    a.signal("CONT");
    wait_until("relay A to be refused", Duration::from_secs(20), || async {
        !report(dir, "relay-a").refused.is_empty()
    })
    .await;

    // B dies mid-stream; A takes the lease back once B's expires.
    b.signal("KILL");
    drop(b);
    wait_until("relay A to take the lease back", Duration::from_secs(20), || async {
        report(dir, "relay-a").held.len() >= 2
    })
    .await;
    let pending_at_return = store.status().await.unwrap().pending;
    assert!(pending_at_return > 0, "relay A finished before it could be frozen again");

    // Then A freezes again, this time at a random point of its deliveries (mid-publish,
    // between publishes, before an acknowledgement), past its lease; C finishes the
    // outbox; A wakes into C's lease.
    let seed = crate::support::process::seed(test);
    let target = seed % (pending_at_return / 2).max(1);
    wait_until("relay A to deliver again", Duration::from_mins(1), || async {
        store.status().await.unwrap().pending + target <= pending_at_return
    })
    .await;
    a.signal("STOP");
    let pending_at_second_freeze = store.status().await.unwrap().pending;
    tokio::time::sleep(LEASE + Duration::from_millis(200)).await;
    let c = spawn(test, dir, "relay-c", &[], configure_c);
    wait_until("relay C to deliver the rest", Duration::from_mins(1), || async {
        store.status().await.unwrap().pending == 0
    })
    .await;
    a.signal("CONT");
    // Whatever A had in flight lands now, or is refused.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut a = a;
    assert!(a.is_alive(), "relay A died by itself");
    drop((a, c));
    let status = store.status().await.unwrap();
    assert!(status.parked.is_empty(), "rows were parked: {:?}", status.parked);
    assert_eq!(status.pending, 0, "rows reappeared in the outbox");
    println!(
        "A froze holding generation {frozen} with {pending_at_freeze} rows pending; B was stopped, then killed, with \
         {pending_at_stop} pending; A froze again with {pending_at_second_freeze} pending"
    );
    Outcome { frozen, held, a: report(dir, "relay-a"), b: report(dir, "relay-b"), c: report(dir, "relay-c") }
}

/// The checks every sink shares: A was refused first for the generation it froze
/// with; B held a newer one and its fault fired (when it had one); A came back under a
/// newer one still, and C above that; A's second freeze, at a random point, may have
/// been refused too, but only for the generation it then held; nobody met another
/// error.
pub fn assert_generations(outcome: &Outcome, b_drops: bool) {
    let Outcome { frozen, a, b, c, .. } = outcome;
    assert!(
        a.errors.is_empty() && b.errors.is_empty() && c.errors.is_empty(),
        "errors: A {:?}, B {:?}, C {:?}",
        a.errors,
        b.errors,
        c.errors
    );
    assert_eq!(a.refused.first(), Some(frozen), "A must be refused first for the generation it froze with");
    let b_generation = *b.held.first().expect("B held the lease");
    assert!(b_generation > *frozen, "B's generation {b_generation} must exceed A's {frozen}");
    assert_eq!(a.held.len(), 2, "A held the lease twice: {:?}", a.held);
    let back = a.held[1];
    assert!(back > b_generation, "A took the lease back under {back}, not above B's {b_generation}");
    assert!(a.refused[1..].iter().all(|g| *g == back), "A's later refusals: {:?}", a.refused);
    let c_generation = *c.held.first().expect("C held the lease");
    assert!(c_generation > back, "C's generation {c_generation} must exceed A's {back}");
    if b_drops {
        assert!(b.dropped.is_some(), "B's fault never fired");
    }
}

/// Events by id, for suites that read ids back.
pub fn by_id(events: &[StoredEvent]) -> HashMap<uuid::Uuid, &StoredEvent> {
    events.iter().map(|e| (e.event_id, e)).collect()
}
