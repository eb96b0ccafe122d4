//! Peak memory of reading one long stream: `read_stream` (every event at once) against
//! `read_stream_paged` (a page at a time) and `load` (folding while reading), on SQLite
//! and PostgreSQL.
//!
//! The stream is written once per backend (one stream, 1,000 events per transaction).
//! Each read then runs in a child process of its own (this binary again), which prints
//! its peak resident set size (`VmHWM` in `/proc/self/status`) after the read, so that
//! every figure starts from a clean process; a child that only opens the store gives
//! the baseline.
//!
//! Run: `cargo bench --features postgres --bench read_memory` (1,000,000 events; add
//! `-- --events N` for another size, `-- --page N` for the paged read's page size
//! (default `es::store::PAGE_SIZE`), `-- --quick` for a smoke run of 20,000 events).
//! PostgreSQL is `ES_TEST_DATABASE_URL`, or `postgres://postgres@127.0.0.1:5432/test`.

use std::process::Command;
use std::time::Instant;

use es::postgres::{PgOptions, PgStore};
use es::sqlite::{SqliteOptions, SqliteStore, Synchronous};
use es::{Aggregate, EventStore, ExpectedVersion};
use futures_util::TryStreamExt;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

mod common;

use common::{Account, BoxError, arg, new_event};

const PER_TX: usize = 1_000;
const STREAM: &str = "long";
const MODES: [&str; 4] = ["open", "read_stream", "read_stream_paged", "load"];

fn pg_url() -> String {
    std::env::var("ES_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Peak resident set size of this process so far, in KiB.
fn peak_rss_kib() -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).ok_or("no VmHWM in /proc/self/status")?;
    Ok(line.split_whitespace().nth(1).ok_or("VmHWM without a value")?.parse()?)
}

/// Appends `events` events to one stream.
async fn fill<S: EventStore>(store: &S, events: usize) -> Result<(), BoxError> {
    let mut version = 0;
    while version < events as u64 {
        let batch = (0..PER_TX as u64).map(|i| new_event(version + i)).collect();
        let expected = if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) };
        version = store.append(Account::stream_type(), STREAM, expected, batch).await?.version;
    }
    Ok(())
}

/// The child: reads the stream one way and prints `events peak_kib seconds`.
async fn read<S: EventStore>(store: &S, mode: &str, page: usize) -> Result<(), BoxError> {
    let start = Instant::now();
    let events = match mode {
        "open" => 0,
        "read_stream" => store.read_stream(Account::stream_type(), STREAM, 1).await?.len() as u64,
        "read_stream_paged" => {
            let events = store.read_stream_paged(Account::stream_type(), STREAM, 1, page);
            events
                .try_fold(0_u64, |count, event| async move { Ok(count + u64::from(event.stream_version > 0)) })
                .await?
        }
        "load" => store.load::<Account>(STREAM).await?.version(),
        other => return Err(format!("unknown mode {other}").into()),
    };
    println!("{events} {} {:.3}", peak_rss_kib()?, start.elapsed().as_secs_f64());
    Ok(())
}

async fn child(backend: &str, mode: &str, location: &str, page: usize) -> Result<(), BoxError> {
    match backend {
        "sqlite" => read(&SqliteStore::open(location).await?, mode, page).await,
        _ => read(&PgOptions::new(pg_url()).table_prefix(location).max_connections(1).open().await?, mode, page).await,
    }
}

/// Runs every mode in a child process and prints a table row per mode.
fn measure(backend: &str, location: &str, events: usize, page: usize) -> Result<(), BoxError> {
    println!("\n{backend}, one stream of {events} events of ~{} bytes, page {page}:", new_event(1).payload.len());
    println!("| read | events | peak RSS | time |");
    println!("|---|---|---|---|");
    for mode in MODES {
        let output = Command::new(std::env::current_exe()?)
            .args(["--child", backend, mode, location, &page.to_string()])
            .output()?;
        if !output.status.success() {
            return Err(format!("{backend} {mode}: {}", String::from_utf8_lossy(&output.stderr)).into());
        }
        let stdout = String::from_utf8(output.stdout)?;
        let fields: Vec<&str> = stdout.split_whitespace().collect();
        let [count, kib, seconds] = fields[..] else { return Err(format!("{backend} {mode}: {stdout}").into()) };
        let kib: u32 = kib.parse()?;
        println!("| `{mode}` | {count} | {:.1} MiB | {seconds} s |", f64::from(kib) / 1024.0);
    }
    Ok(())
}

async fn bench() -> Result<(), BoxError> {
    let quick = std::env::args().any(|a| a == "--quick");
    let events = arg("--events", if quick { 20_000 } else { 1_000_000 }).max(PER_TX);
    let page = arg("--page", es::store::PAGE_SIZE);

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.db");
    let store = SqliteOptions::new(&path).synchronous(Synchronous::Normal).open().await?;
    fill(&store, events).await?;
    drop(store);
    measure("sqlite", path.to_str().ok_or("temporary path is not UTF-8")?, events, page)?;

    let prefix = format!("readmem{}_", &Uuid::now_v7().simple().to_string()[20..]);
    let store = PgOptions::new(pg_url()).table_prefix(&prefix).max_connections(2).open().await?;
    let outcome = async {
        fill(&store, events).await?;
        measure("postgres", &prefix, events, page)
    }
    .await;
    drop_tables(&store).await?;
    outcome
}

async fn drop_tables(store: &PgStore) -> Result<(), BoxError> {
    for table in ["outbox", "events", "checkpoints", "skipped", "relay_lease", "snapshots", "schema"] {
        let sql = format!("DROP TABLE IF EXISTS {} CASCADE", store.table(table));
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(store.pool()).await?;
    }
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        let [backend, mode, location, page] = &args[at + 1..] else { return Err("--child needs 4 arguments".into()) };
        return runtime.block_on(child(backend, mode, location, page.parse()?));
    }
    runtime.block_on(bench())
}
