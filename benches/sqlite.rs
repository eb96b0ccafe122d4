//! The SQLite store against raw rusqlite doing the same SQL on the same schema, in one
//! run.
//!
//! The raw side is the fair physical ceiling of an async API over SQLite: a dedicated
//! thread owns a rusqlite `Connection` (WAL, `synchronous=NORMAL`, foreign keys on,
//! cached prepared statements, like the store), is fed jobs through a std mpsc channel
//! and replies through a tokio oneshot; every transaction is one job, so it costs one
//! thread hop. Both sides are driven from the same tokio current-thread runtime, write
//! to fresh files in a temporary directory. Within each round the two sides take
//! turns in about 20 slices of the round's work (the side going first alternating), so
//! that a burst of load on the machine hits both alike; each figure is the median of
//! the rounds.
//!
//! - **append, 1 event per transaction**: `EventStore::append` against `BEGIN
//!   IMMEDIATE; SELECT COALESCE(MAX(stream_version), 0) …; INSERT INTO es_events …;
//!   INSERT INTO es_outbox …; COMMIT`, over many streams, each append with the
//!   stream's correct expected version.
//! - **append, 100 events per transaction**: the same with 100 events per append.
//! - **rehydrate** a 10,000-event stream (in a table that holds other streams too):
//!   `EventStore::load` (what every command runs: read, decode, check versions, fold)
//!   against the same `SELECT … ORDER BY
//!   stream_version` with each payload decoded by `serde_json` straight from the row and
//!   applied, inside the one hop.
//! - **relay** a backlog to an in-process sink that counts: `Relay::run_once` until
//!   drained against a loop that selects the outbox rows joined to their events in
//!   order (batches of 256), hands them to the same sink and deletes them from the
//!   outbox.
//!
//! The raw file's schema is created by `es` itself (then closed), so both sides run on
//! the same tables and indexes.
//!
//! Run: `cargo bench --bench sqlite` (add `-- --quick` for a smoke run, `-- --only rehydrate`
//! for one workload (`append1`, `append100`, `rehydrate`, `relay`), `-- --rounds R`
//! to change the number of rounds).

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use es::sink::Sink;
use es::sqlite::{SqliteOptions, SqliteStore, Synchronous};
use es::{
    Aggregate, Cursor, EventStore, ExpectedVersion, Metadata, NewEvent, Relay, RelayOptions, StoredEvent, Timestamp,
};
use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::oneshot;
use uuid::Uuid;

mod common;

use common::{Account, BoxError, CountingSink, Pair, arg, new_event, raw_decode, runs};

// ---------------------------------------------------------------------------------
// The raw side: one thread owning one connection, one hop per transaction.

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

struct Raw {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Raw {
    fn open(path: &Path) -> Result<Self, BoxError> {
        let connection = Connection::open(path)?;
        let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        assert!(mode.eq_ignore_ascii_case("wal"), "journal mode {mode}");
        connection.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")?;
        connection.set_prepared_statement_cache_capacity(64);
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new().name("raw-sqlite".into()).spawn(move || {
            let mut connection = connection;
            while let Ok(job) = queue.recv() {
                job(&mut connection);
            }
        })?;
        Ok(Self { jobs: Some(jobs), thread: Some(thread) })
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce(&mut Connection) -> T + Send + 'static) -> T {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            let _ = reply.send(work(connection));
        });
        self.jobs.as_ref().expect("open").send(job).expect("the raw thread runs");
        result.await.expect("the raw thread replies")
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

const SELECT_VERSION: &str =
    "SELECT COALESCE(MAX(stream_version), 0) FROM es_events WHERE stream_type = ?1 AND stream_id = ?2";
const INSERT_EVENT: &str = "INSERT INTO es_events (event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
const INSERT_OUTBOX: &str = "INSERT INTO es_outbox (position, stream_type, stream_id) VALUES (?1, ?2, ?3)";
const SELECT_STREAM: &str = "SELECT position, event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload
     FROM es_events WHERE stream_type = ?1 AND stream_id = ?2 AND stream_version >= ?3 ORDER BY stream_version";
const SELECT_OUTBOX: &str = "SELECT e.position, e.event_id, e.stream_type, e.stream_id, e.stream_version, e.event_type, e.schema_version, e.occurred_at, e.metadata, e.payload
     FROM es_outbox o JOIN es_events e ON e.position = o.position ORDER BY o.position LIMIT ?1";
const DELETE_OUTBOX: &str = "DELETE FROM es_outbox WHERE position = ?1";

/// The same SQL as the store's append, in one transaction; returns the new version.
fn raw_append(
    connection: &mut Connection,
    stream_type: &str,
    stream_id: &str,
    expected: u64,
    events: Vec<NewEvent>,
) -> Result<u64, BoxError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let actual: i64 =
        tx.prepare_cached(SELECT_VERSION)?.query_row(params![stream_type, stream_id], |row| row.get(0))?;
    let actual = u64::try_from(actual)?;
    if actual != expected {
        return Err(format!("{stream_type}/{stream_id}: expected {expected}, found {actual}").into());
    }
    let count = events.len() as u64;
    {
        let mut insert_event = tx.prepare_cached(INSERT_EVENT)?;
        let mut insert_outbox = tx.prepare_cached(INSERT_OUTBOX)?;
        for (version, event) in (actual + 1..).zip(events) {
            insert_event.execute(params![
                event.event_id.as_bytes(),
                stream_type,
                stream_id,
                i64::try_from(version)?,
                event.event_type,
                event.schema_version,
                event.occurred_at.as_unix_micros(),
                Option::<String>::None,
                event.payload,
            ])?;
            let position = tx.last_insert_rowid();
            insert_outbox.execute(params![position, stream_type, stream_id])?;
        }
    }
    tx.commit()?;
    Ok(actual + count)
}

/// The raw rehydration: the same SELECT, each payload decoded from the row and applied.
fn raw_rehydrate(connection: &Connection, stream_id: &str) -> Result<(Account, u64), BoxError> {
    let mut statement = connection.prepare_cached(SELECT_STREAM)?;
    let mut rows = statement.query(params![Account::stream_type(), stream_id, 0_i64])?;
    let mut account = Account::default();
    let mut count = 0;
    while let Some(row) = rows.next()? {
        let event = raw_decode(row.get_ref(5)?.as_str()?, row.get_ref(9)?.as_str()?)?;
        account.apply(&event);
        count += 1;
    }
    Ok((account, count))
}

/// One batch of undelivered rows, in order, as the events the sink takes.
fn raw_fetch(connection: &Connection, limit: i64) -> Result<Vec<StoredEvent>, BoxError> {
    let mut statement = connection.prepare_cached(SELECT_OUTBOX)?;
    let mut rows = statement.query([limit])?;
    let mut batch = Vec::new();
    while let Some(row) = rows.next()? {
        let id: Vec<u8> = row.get(1)?;
        let metadata: Option<String> = row.get(8)?;
        batch.push(StoredEvent {
            event_id: Uuid::from_slice(&id)?,
            stream_type: row.get(2)?,
            stream_id: row.get(3)?,
            stream_version: u64::try_from(row.get::<_, i64>(4)?)?,
            cursor: Cursor::at_position(u64::try_from(row.get::<_, i64>(0)?)?),
            event_type: row.get(5)?,
            schema_version: row.get(6)?,
            occurred_at: Timestamp::from_unix_micros(row.get(7)?),
            metadata: match metadata {
                None => Metadata::default(),
                Some(text) => serde_json::from_str(&text)?,
            },
            payload: row.get(9)?,
        });
    }
    Ok(batch)
}

fn raw_delete(connection: &mut Connection, positions: &[u64]) -> Result<(), BoxError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut delete = tx.prepare_cached(DELETE_OUTBOX)?;
        for &position in positions {
            delete.execute([i64::try_from(position)?])?;
        }
    }
    tx.commit()?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// Workloads.

/// Appends in an order that visits streams round robin: `(stream index, events)`.
fn append_workload(
    transactions: usize,
    streams: usize,
    per_tx: usize,
    versions: &[u64],
) -> Vec<(usize, Vec<NewEvent>)> {
    let mut next: Vec<u64> = versions.to_vec();
    (0..transactions)
        .map(|i| {
            let stream = i % streams;
            let events = (0..per_tx)
                .map(|_| {
                    let event = new_event(next[stream]);
                    next[stream] += 1;
                    event
                })
                .collect();
            (stream, events)
        })
        .collect()
}

fn stream_ids(prefix: &str, streams: usize) -> Vec<String> {
    (0..streams).map(|i| format!("{prefix}-{i:06}")).collect()
}

fn expected(version: u64) -> ExpectedVersion {
    if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) }
}

async fn open_es(path: &Path) -> Result<SqliteStore, BoxError> {
    Ok(SqliteOptions::new(path).synchronous(Synchronous::Normal).open().await?)
}

/// A raw connection on a fresh file whose schema `es` created.
async fn open_raw(path: &Path) -> Result<Raw, BoxError> {
    drop(open_es(path).await?);
    Raw::open(path)
}

async fn es_append(
    store: &SqliteStore,
    ids: &[String],
    versions: &mut [u64],
    work: Vec<(usize, Vec<NewEvent>)>,
) -> Result<(), BoxError> {
    let stream_type = Account::stream_type();
    for (stream, events) in work {
        let appended = store.append(stream_type, &ids[stream], expected(versions[stream]), events).await?;
        versions[stream] = appended.version;
    }
    Ok(())
}

async fn raw_append_all(
    raw: &Raw,
    ids: &[String],
    versions: &mut [u64],
    work: Vec<(usize, Vec<NewEvent>)>,
) -> Result<(), BoxError> {
    for (stream, events) in work {
        let (id, version) = (ids[stream].clone(), versions[stream]);
        versions[stream] = raw.run(move |c| raw_append(c, Account::stream_type(), &id, version, events)).await?;
    }
    Ok(())
}

/// How many slices each side's work in a round is cut into; the sides alternate slice
/// by slice (the one going first alternating too), so that a burst of load on the
/// machine hits both alike.
const SLICES: usize = 20;

/// One round of appends: `transactions` appends of `per_tx` events over `streams`
/// fresh streams, on a fresh file per side; returns the time each side took.
async fn append_round(
    dir: &Path,
    name: &str,
    transactions: usize,
    streams: usize,
    per_tx: usize,
) -> Result<(Duration, Duration), BoxError> {
    let (es_path, raw_path) = (dir.join(format!("{name}-es.db")), dir.join(format!("{name}-raw.db")));
    let ids = stream_ids("acc", streams);
    let (mut es_versions, mut raw_versions) = (vec![0; streams], vec![0; streams]);
    let mut es_work = append_workload(transactions, streams, per_tx, &es_versions).into_iter();
    let mut raw_work = append_workload(transactions, streams, per_tx, &raw_versions).into_iter();
    let store = open_es(&es_path).await?;
    let raw = open_raw(&raw_path).await?;
    let slice = transactions.div_ceil(SLICES);
    let (mut es_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    for i in 0..SLICES {
        let mut es_slice = Some(es_work.by_ref().take(slice).collect::<Vec<_>>());
        let mut raw_slice = Some(raw_work.by_ref().take(slice).collect::<Vec<_>>());
        for use_es in if i % 2 == 0 { [true, false] } else { [false, true] } {
            let start = Instant::now();
            if use_es {
                es_append(&store, &ids, &mut es_versions, es_slice.take().unwrap_or_default()).await?;
                es_time += start.elapsed();
            } else {
                raw_append_all(&raw, &ids, &mut raw_versions, raw_slice.take().unwrap_or_default()).await?;
                raw_time += start.elapsed();
            }
        }
    }
    let total = (transactions * per_tx) as u64;
    assert_eq!(es_versions.iter().sum::<u64>(), total, "{name}: every event appended by es");
    assert_eq!(raw_versions.iter().sum::<u64>(), total, "{name}: every event appended by raw");
    drop((store, raw));
    remove_db(&es_path);
    remove_db(&raw_path);
    Ok((es_time, raw_time))
}

/// One round of relaying: a fresh file per side with a backlog of `events` undelivered
/// events (written by that side), then the time each side takes to deliver them all.
async fn relay_round(dir: &Path, name: &str, events: usize) -> Result<(Duration, Duration), BoxError> {
    const PER_TX: usize = 100;
    const STREAMS: usize = 50;
    let (es_path, raw_path) = (dir.join(format!("{name}-es.db")), dir.join(format!("{name}-raw.db")));
    let ids = stream_ids("acc", STREAMS);
    let (mut es_versions, mut raw_versions) = (vec![0; STREAMS], vec![0; STREAMS]);
    let store = open_es(&es_path).await?;
    let es_work = append_workload(events / PER_TX, STREAMS, PER_TX, &es_versions);
    es_append(&store, &ids, &mut es_versions, es_work).await?;
    let raw = open_raw(&raw_path).await?;
    let raw_work = append_workload(events / PER_TX, STREAMS, PER_TX, &raw_versions);
    raw_append_all(&raw, &ids, &mut raw_versions, raw_work).await?;
    let (es_sink, raw_sink) = (CountingSink::default(), CountingSink::default());
    let mut relay = Relay::new(store.clone(), es_sink.clone(), RelayOptions::default());
    // Batches per slice, so that the sides alternate about SLICES times.
    let per_slice = (events / 256 / SLICES).max(1);
    let (mut es_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    let (mut es_done, mut raw_done) = (false, false);
    let mut i = 0;
    while !(es_done && raw_done) {
        for use_es in if i % 2 == 0 { [true, false] } else { [false, true] } {
            let start = Instant::now();
            if use_es && !es_done {
                for _ in 0..per_slice {
                    if relay.run_once().await?.delivered == 0 {
                        es_done = true;
                        break;
                    }
                }
                es_time += start.elapsed();
            } else if !use_es && !raw_done {
                for _ in 0..per_slice {
                    let batch = raw.run(|c| raw_fetch(c, 256)).await?;
                    if batch.is_empty() {
                        raw_done = true;
                        break;
                    }
                    raw_sink.deliver(&batch, es::LeaseGeneration::new(1)).await?;
                    let positions: Vec<u64> = batch.iter().map(|event| event.cursor.position).collect();
                    raw.run(move |c| raw_delete(c, &positions)).await?;
                }
                raw_time += start.elapsed();
            }
        }
        i += 1;
    }
    let total = (events / PER_TX * PER_TX) as u64;
    assert_eq!(es_sink.events.load(Ordering::Relaxed), total, "{name}: es delivered every event once");
    assert_eq!(raw_sink.events.load(Ordering::Relaxed), total, "{name}: raw delivered every event once");
    drop((relay, store, raw));
    remove_db(&es_path);
    remove_db(&raw_path);
    Ok((es_time, raw_time))
}

/// One round of rehydration on the shared fixture: `times` loads per side, alternating.
async fn rehydrate_round(
    store: &SqliteStore,
    raw: &Raw,
    stream_id: &str,
    events: usize,
    times: usize,
) -> Result<(Duration, Duration), BoxError> {
    let (mut es_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    for i in 0..times {
        for use_es in if i % 2 == 0 { [true, false] } else { [false, true] } {
            let start = Instant::now();
            let (version, deposits) = if use_es {
                let loaded = store.load::<Account>(stream_id).await?;
                let outcome = (loaded.version(), black_box(loaded.state()).deposits);
                es_time += start.elapsed();
                outcome
            } else {
                let id = stream_id.to_owned();
                let (account, count) = raw.run(move |c| raw_rehydrate(c, &id)).await?;
                let outcome = (count, black_box(&account).deposits);
                raw_time += start.elapsed();
                outcome
            };
            assert_eq!(version, events as u64);
            assert!(deposits > 0);
        }
    }
    Ok((es_time, raw_time))
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

// ---------------------------------------------------------------------------------
// Measuring and reporting.

struct Sizes {
    rounds: usize,
    single_tx: usize,
    single_streams: usize,
    batch_tx: usize,
    batch_streams: usize,
    stream_events: usize,
    rehydrates: usize,
    relay_events: usize,
}

async fn bench() -> Result<(), BoxError> {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick {
        Sizes {
            rounds: 3,
            single_tx: 1_000,
            single_streams: 100,
            batch_tx: 20,
            batch_streams: 10,
            stream_events: 2_000,
            rehydrates: 4,
            relay_events: 5_000,
        }
    } else {
        Sizes {
            rounds: 9,
            single_tx: 10_000,
            single_streams: 1_000,
            batch_tx: 200,
            batch_streams: 20,
            stream_events: 10_000,
            rehydrates: 20,
            relay_events: 50_000,
        }
    };
    let rounds = arg("--rounds", sizes.rounds).max(1);
    let dir = tempfile::tempdir()?;

    // The rehydration fixture: one file, the stream of interest interleaved with three
    // others, written by es and read by both sides.
    let fixture = dir.path().join("rehydrate.db");
    let store = open_es(&fixture).await?;
    let ids = stream_ids("acc", 4);
    let mut versions = vec![0; 4];
    let work = append_workload(sizes.stream_events / 100 * 4, 4, 100, &versions);
    es_append(&store, &ids, &mut versions, work).await?;
    let raw_reader = Raw::open(&fixture)?;

    println!(
        "sqlite (WAL, synchronous=NORMAL), {rounds} rounds, sides interleaved within each round, medians; payloads ~{} bytes{}",
        new_event(1).payload.len(),
        if quick { " [--quick]" } else { "" }
    );
    let (mut single, mut batch, mut rehydrate, mut relay) =
        (Pair::default(), Pair::default(), Pair::default(), Pair::default());
    for round in 0..rounds {
        let d = dir.path();
        if runs("append1") {
            single.push(append_round(d, &format!("single-{round}"), sizes.single_tx, sizes.single_streams, 1).await?);
        }
        if runs("append100") {
            batch.push(append_round(d, &format!("batch-{round}"), sizes.batch_tx, sizes.batch_streams, 100).await?);
        }
        if runs("rehydrate") {
            rehydrate.push(rehydrate_round(&store, &raw_reader, &ids[0], sizes.stream_events, sizes.rehydrates).await?);
        }
        if runs("relay") {
            relay.push(relay_round(d, &format!("relay-{round}"), sizes.relay_events).await?);
        }
    }
    if runs("append1") {
        single.report("append 1 event/tx", sizes.single_tx, "tx");
    }
    if runs("append100") {
        batch.report("append 100 events/tx", sizes.batch_tx * 100, "events");
    }
    if runs("rehydrate") {
        rehydrate.report(
            &format!("rehydrate {}-event stream", sizes.stream_events),
            sizes.stream_events * sizes.rehydrates,
            "events",
        );
    }
    if runs("relay") {
        relay.report("relay to in-process sink", sizes.relay_events, "events");
    }
    Ok(())
}

fn main() -> Result<(), BoxError> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(bench())
}
