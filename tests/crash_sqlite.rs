//! Kill real processes at random points while they append, relay and project, then
//! prove that nothing was lost, torn apart or applied twice.
//!
//! The child is this very test binary, running this same test again with
//! `ES_CRASH_CHILD_DB` set: it then does the child's workload and never returns on its
//! own. The parent SIGKILLs it at random moments, restarts it, and finally checks the
//! database, the sink's file and the read model.

mod support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use es::projection::HandlerError;
use es::relay::Outbox;
use es::sink::JsonLinesSink;
use es::sqlite::{Projection, ProjectionRunner, SqliteStore};
use es::{EventStore, ExpectedVersion, IdSource, Metadata, NewEvent, RandomIds, Relay, RelayOptions, StoredEvent};
use support::process::{child_role, rerun_as_child};
use support::{Account, AccountEvent};

const CHILD_ENV: &str = "ES_CRASH_CHILD_DB";
const ACCOUNTS: u64 = 6;

struct Balances;

impl Projection for Balances {
    fn name(&self) -> &'static str {
        "balances"
    }
    fn setup(&mut self, tx: &rusqlite::Connection) -> Result<(), HandlerError> {
        tx.execute_batch("CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance INTEGER NOT NULL, events INTEGER NOT NULL)")?;
        Ok(())
    }
    fn handle(&mut self, tx: &rusqlite::Connection, event: &StoredEvent) -> Result<(), HandlerError> {
        let recorded = event.decode_ref::<AccountEvent>()?;
        let amount = match recorded.event() {
            AccountEvent::Deposited { amount } => i64::try_from(*amount)?,
            _ => 0,
        };
        tx.execute(
            "INSERT INTO balances VALUES (?1, ?2, 1) ON CONFLICT (account) DO UPDATE SET balance = balance + ?2, events = events + 1",
            rusqlite::params![recorded.stream_id(), amount],
        )?;
        Ok(())
    }
    fn reset(&mut self, tx: &rusqlite::Connection) -> Result<(), HandlerError> {
        tx.execute("DELETE FROM balances", [])?;
        Ok(())
    }
}

fn paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("bank.db"), dir.join("sink.jsonl"))
}

/// One command: load the account, decide a deposit, and append it together with a
/// business row, in one transaction.
async fn deposit(store: &SqliteStore, account: &str, amount: u64) {
    let stored = store.read_stream("Account", account, 1).await.unwrap();
    let version = es::rehydrate::<Account>(account, stored).unwrap().version();
    let event = NewEvent::encode(
        &AccountEvent::Deposited { amount },
        RandomIds.next_id(),
        es::Timestamp::EPOCH,
        Metadata::default(),
    )
    .unwrap();
    let (account, event_id) = (account.to_owned(), event.event_id);
    let expected = if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) };
    store
        .transaction(move |tx| {
            tx.execute(
                "INSERT INTO ledger (event_id, account, amount) VALUES (?1, ?2, ?3)",
                rusqlite::params![event_id.as_bytes(), account, i64::try_from(amount).unwrap()],
            )?;
            tx.append("Account", &account, expected, vec![event])?;
            Ok::<_, es::StoreError>(())
        })
        .await
        .unwrap();
}

async fn open(db: &Path) -> SqliteStore {
    let store = SqliteStore::open(db).await.unwrap();
    store
        .transaction(|tx| {
            tx.execute_batch("CREATE TABLE IF NOT EXISTS ledger (event_id BLOB PRIMARY KEY, account TEXT NOT NULL, amount INTEGER NOT NULL)")?;
            Ok::<_, es::StoreError>(())
        })
        .await
        .unwrap();
    store
}

fn relay_options() -> RelayOptions {
    RelayOptions {
        batch_size: 8,
        poll_interval: Duration::from_millis(10),
        // A killed child leaves its lease behind; a short lease lets the next one go on.
        lease: Duration::from_millis(200),
        delivery_timeout: Duration::from_millis(80),
        ..RelayOptions::default()
    }
}

/// The child's workload, in a process of its own: append, relay and project until
/// killed.
fn child_workload(dir: &Path) {
    let (db, sink_path) = paths(dir);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let store = open(&db).await;
        let relay = Relay::new(store.clone(), JsonLinesSink::open(&sink_path).unwrap(), relay_options());
        tokio::spawn(relay.run(std::future::pending()));
        let runner =
            ProjectionRunner::new(store.clone(), Balances).batch_size(4).poll_interval(Duration::from_millis(10));
        tokio::spawn(runner.run(std::future::pending()));
        let mut n: u64 = std::process::id().into();
        loop {
            n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            deposit(&store, &format!("acc-{}", (n >> 33) % ACCOUNTS), (n >> 40) % 1000 + 1).await;
        }
    });
}

fn read_sink(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // A line torn by a kill does not parse; its event is redelivered after restart.
    text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

#[test]
#[allow(clippy::too_many_lines, reason = "one scenario, checked invariant by invariant")]
fn killing_the_process_at_random_points_loses_and_duplicates_nothing() {
    const TEST: &str = "killing_the_process_at_random_points_loses_and_duplicates_nothing";
    if let Some(dir) = child_role(CHILD_ENV) {
        return child_workload(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let (db, sink_path) = paths(dir.path());
    let mut seed = support::process::seed(TEST);
    let kills = 24;
    for round in 0..kills {
        let mut child =
            rerun_as_child(TEST, CHILD_ENV, dir.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let alive = Duration::from_millis(60 + (seed >> 33) % 400);
        std::thread::sleep(alive);
        assert!(child.try_wait().unwrap().is_none(), "the child died by itself in round {round}");
        child.kill().unwrap(); // SIGKILL: no destructor, no flush, no goodbye.
        child.wait().unwrap();
    }

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let store = open(&db).await;
        let events = store.read_all(es::Cursor::START, usize::MAX).await.unwrap();
        assert!(events.len() > kills, "the children did too little work to prove anything: {} events", events.len());

        // Every event has its business row and either its outbox row or a delivery;
        // no outbox row without its event.
        let (ledger, outbox, orphans): (HashSet<Vec<u8>>, HashSet<i64>, i64) = store
            .read(|c| {
                let ledger = c.prepare("SELECT event_id FROM ledger")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
                let outbox = c.prepare("SELECT position FROM es_outbox")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
                let orphans = c.query_row(
                    "SELECT COUNT(*) FROM es_outbox o WHERE NOT EXISTS (SELECT 1 FROM es_events e WHERE e.position = o.position)",
                    [],
                    |r| r.get(0),
                )?;
                Ok((ledger, outbox, orphans))
            })
            .await
            .unwrap();
        assert_eq!(orphans, 0, "outbox rows without their event");
        assert_eq!(ledger.len(), events.len(), "business rows and events disagree");
        let delivered_before: HashSet<String> =
            read_sink(&sink_path).iter().map(|line| line["event_id"].as_str().unwrap().to_owned()).collect();
        for event in &events {
            assert!(ledger.contains(event.event_id.as_bytes().as_slice()), "event {} has no business row", event.event_id);
            let pending = outbox.contains(&i64::try_from(event.cursor.position).unwrap());
            assert!(
                pending || delivered_before.contains(&event.event_id.to_string()),
                "event {} was neither delivered nor pending",
                event.event_id
            );
        }

        // Finish the work the children left, then compare everything.
        let mut relay = Relay::new(store.clone(), JsonLinesSink::open(&sink_path).unwrap(), relay_options());
        tokio::time::sleep(Duration::from_millis(250)).await; // the last child's lease expires
        while store.status().await.unwrap().pending > 0 {
            relay.run_once().await.unwrap();
        }
        let mut runner = ProjectionRunner::new(store.clone(), Balances);
        runner.catch_up().await.unwrap();

        let lines = read_sink(&sink_path);
        let mut first_seen: Vec<String> = Vec::new();
        let mut distinct = HashSet::new();
        for line in &lines {
            let id = line["event_id"].as_str().unwrap().to_owned();
            if distinct.insert(id.clone()) {
                first_seen.push(id);
            }
        }
        let committed: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
        assert_eq!(distinct.len(), committed.len(), "after dedupe the sink holds exactly the committed events");
        assert!(committed.iter().all(|id| distinct.contains(id)));
        // Per stream, first deliveries come in version order.
        let version_of: HashMap<String, (String, u64)> =
            events.iter().map(|e| (e.event_id.to_string(), (e.stream_id.clone(), e.stream_version))).collect();
        let mut last: HashMap<String, u64> = HashMap::new();
        for id in &first_seen {
            let (stream, version) = &version_of[id];
            let previous = last.insert(stream.clone(), *version).unwrap_or(0);
            assert_eq!(*version, previous + 1, "stream {stream} delivered out of order");
        }

        // The read model equals the fold of every stream, and every stream folds.
        let model: HashMap<String, (i64, i64)> = store
            .read(|c| {
                c.prepare("SELECT account, balance, events FROM balances")?
                    .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
                    .collect()
            })
            .await
            .unwrap();
        let mut streams: Vec<String> = events.iter().map(|e| e.stream_id.clone()).collect();
        streams.sort();
        streams.dedup();
        for stream in &streams {
            let stored = store.read_stream("Account", stream, 1).await.unwrap();
            let folded = es::rehydrate::<Account>(stream, stored).unwrap();
            let balance = i64::try_from(folded.state().balance).unwrap();
            let count = i64::try_from(folded.version()).unwrap();
            assert_eq!(model[stream], (balance, count), "read model of {stream} differs from the fold of its events");
        }
        println!(
            "{kills} kills: {} events committed, {} sink lines ({} redelivered), {} streams",
            events.len(),
            lines.len(),
            lines.len() - distinct.len(),
            streams.len()
        );
    });
}
