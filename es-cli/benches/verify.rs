//! `es verify` on a large SQLite store against a plain `SELECT` of the same rows with
//! the same driver (rusqlite).
//!
//! The plain side is the physical ceiling of reading the store: one statement over the
//! events table in position order, every column of every row touched, no check at all.
//! `verify` reads every row twice (once in position order for the values, once in
//! stream order for the versions), page by page, validates every payload and metadata
//! value as JSON, and runs its other checks; its rate is events checked per second of
//! the whole run. Rounds alternate which side goes first; the figures are medians.
//!
//! Run: `cargo bench -p es-cli --bench verify` (1,000,000 events in 10,000 streams; add
//! `-- --quick` for a smoke run with 20,000 events, `-- --events N` for another size,
//! `-- --page-size N` for verify's page size, 2000 by default as in `es verify`).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use es_cli::args::VerifyArgs;
use es_cli::verify;
use es_core::sqlite::{SqliteOptions, SqliteStore};
use rusqlite::Connection;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args();
    args.position(|a| a == name)?;
    args.next()
}

/// Fills a fresh store with `events` events, 100 per stream, written with SQL in one
/// transaction (the schema is created by `es` itself first).
async fn fill(path: &Path, events: u64) -> Result<(), BoxError> {
    drop(SqliteStore::open(path).await?);
    let mut connection = Connection::open(path)?;
    let tx = connection.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO es_events (event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload)
             VALUES (?1, 'Account', ?2, ?3, 'Deposited', 1, ?4, NULL, ?5)",
        )?;
        for n in 0..events {
            let stream = format!("acct-{:06}", n / 100);
            let id = uuid::Uuid::now_v7();
            insert.execute(rusqlite::params![
                id.as_bytes().as_slice(),
                stream,
                i64::try_from(n % 100 + 1)?,
                1_767_225_600_000_000_i64 + i64::try_from(n)?,
                format!("{{\"amount\":{n},\"note\":\"deposit number {n} of the benchmark\"}}"),
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The ceiling: every column of every row, in one statement.
fn plain_select(path: &Path) -> Result<u64, BoxError> {
    let connection = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut statement = connection.prepare(
        "SELECT position, event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload
         FROM es_events ORDER BY position",
    )?;
    let mut rows = statement.query([])?;
    let mut count = 0_u64;
    while let Some(row) = rows.next()? {
        for column in 0..10 {
            black_box(row.get_ref(column)?);
        }
        count += 1;
    }
    Ok(count)
}

async fn run_verify(path: &Path, page_size: u32) -> Result<(), BoxError> {
    let store = SqliteOptions::new(path).open_read_only().await?;
    let args = VerifyArgs { page_size, max_problems: 1000, decode: false, determinism: false };
    let outcome = verify::run(&store, &es_cli::App::new(), &args, false, &mut std::io::sink()).await?;
    assert_eq!(outcome, es_cli::Outcome::Clean, "the benchmark's store is sound");
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> Result<(), BoxError> {
    let quick = std::env::args().any(|a| a == "--quick");
    let events: u64 = arg("--events").map_or(Ok(if quick { 20_000 } else { 1_000_000 }), |n| n.parse())?;
    let rounds = if quick { 1 } else { 5 };
    let page_size: u32 = arg("--page-size").map_or(Ok(2000), |n| n.parse())?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.db");
    let started = Instant::now();
    runtime.block_on(fill(&path, events))?;
    println!("verify: {events} events in {} streams, filled in {:.1?}", events.div_ceil(100), started.elapsed());
    let (mut select_rates, mut verify_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    #[allow(clippy::cast_precision_loss, reason = "rates for people")]
    let rate = |elapsed: Duration| events as f64 / elapsed.as_secs_f64();
    for round in 0..rounds {
        let time_select = || -> Result<Duration, BoxError> {
            let start = Instant::now();
            assert_eq!(plain_select(&path)?, events);
            Ok(start.elapsed())
        };
        let time_verify = || -> Result<Duration, BoxError> {
            let start = Instant::now();
            runtime.block_on(run_verify(&path, page_size))?;
            Ok(start.elapsed())
        };
        let (select, verify) = if round % 2 == 0 {
            let select = time_select()?;
            (select, time_verify()?)
        } else {
            let verify = time_verify()?;
            (time_select()?, verify)
        };
        select_rates.push(rate(select));
        verify_rates.push(rate(verify));
        ratios.push(rate(verify) / rate(select));
    }
    let (select, verify) = (median(select_rates), median(verify_rates));
    println!("  plain SELECT (rusqlite, every column)  {select:>12.0} events/s");
    println!("  es verify (every check)                {verify:>12.0} events/s");
    println!(
        "  verify / SELECT                        {:>11.0}%   (rounds: {:.0?}%)",
        median(ratios.clone()) * 100.0,
        ratios.iter().map(|r| r * 100.0).collect::<Vec<_>>()
    );
    Ok(())
}
