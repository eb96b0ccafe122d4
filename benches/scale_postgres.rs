//! PostgreSQL at scale: a backlog of a million events drained by the relay and caught
//! up by a projection, on tables that are never analysed (autovacuum off for them, as
//! on a server where nobody ran `ANALYZE`) and, with `--analyze`, on analysed ones.
//!
//! - **append**: the backlog, 1,000 events per transaction over 1,000 streams.
//! - **relay drain**: `Relay::run_once` (batches of 256) to an in-process counting sink
//!   until the outbox is empty; the rate of the first and the last tenth of the
//!   backlog tell whether the drain holds its pace as it goes.
//! - **projection catch-up**: a `ProjectionRunner` whose handler upserts one row per
//!   event (a running count per stream) until it has seen every event; again the first
//!   and the last tenth.
//!
//! Run: `cargo bench --features postgres --bench scale_postgres` (1,000,000 events;
//! add `-- --events N` for another size, `-- --analyze` to analyse the tables before
//! draining, `-- --quick` for a smoke run of 20,000 events). The server is
//! `ES_TEST_DATABASE_URL`, or `postgres://postgres@127.0.0.1:5432/test`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use es::postgres::{PgOptions, PgStore, Projection, ProjectionRunner};
use es::projection::HandlerError;
use es::{Aggregate, EventStore, ExpectedVersion, Relay, RelayOptions, StoredEvent};
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

mod common;

use common::{Account, BoxError, CountingSink, arg, new_event};

const STREAMS: usize = 1_000;
const PER_TX: usize = 1_000;

/// A running count of events per stream.
struct Counts {
    table: String,
}

impl Projection for Counts {
    fn name(&self) -> &'static str {
        "counts"
    }

    async fn setup(&mut self, tx: &mut PgConnection) -> Result<(), HandlerError> {
        let sql =
            format!("CREATE TABLE IF NOT EXISTS {} (stream_id TEXT PRIMARY KEY, events BIGINT NOT NULL)", self.table);
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
        Ok(())
    }

    async fn handle(&mut self, tx: &mut PgConnection, event: &StoredEvent) -> Result<(), HandlerError> {
        let sql = format!(
            "INSERT INTO {} (stream_id, events) VALUES ($1, 1)
             ON CONFLICT (stream_id) DO UPDATE SET events = {}.events + 1",
            self.table, self.table
        );
        sqlx::query(AssertSqlSafe(sql)).bind(&event.stream_id).execute(&mut *tx).await?;
        Ok(())
    }

    async fn reset(&mut self, tx: &mut PgConnection) -> Result<(), HandlerError> {
        sqlx::raw_sql(AssertSqlSafe(format!("DELETE FROM {}", self.table))).execute(&mut *tx).await?;
        Ok(())
    }
}

/// Progress marks: the time at which each tenth of `total` was done.
struct Tenths {
    total: u64,
    start: Instant,
    marks: Vec<Duration>,
}

impl Tenths {
    fn new(total: u64) -> Self {
        Self { total, start: Instant::now(), marks: Vec::new() }
    }

    fn record(&mut self, done: u64) {
        while self.marks.len() < 10 && done * 10 >= self.total * (self.marks.len() as u64 + 1) {
            self.marks.push(self.start.elapsed());
        }
    }

    #[allow(clippy::cast_precision_loss, reason = "event counts are far below 2^52")]
    fn report(&self, name: &str) {
        let tenth = self.total as f64 / 10.0;
        let rate = |d: Duration| tenth / d.as_secs_f64();
        let (Some(first), Some(total)) = (self.marks.first(), self.marks.last()) else { return };
        let last = total.saturating_sub(self.marks[self.marks.len().saturating_sub(2).min(8)]);
        let first_rate = rate(*first);
        let last_rate = rate(last);
        println!(
            "{name}: {:.0} events/s overall, first tenth {first_rate:.0} events/s, last tenth {last_rate:.0} events/s ({:.0}% of the first), {:.1} s in all",
            self.total as f64 / total.as_secs_f64(),
            last_rate / first_rate * 100.0,
            total.as_secs_f64()
        );
    }
}

async fn bench() -> Result<(), BoxError> {
    let quick = std::env::args().any(|a| a == "--quick");
    let analyze = std::env::args().any(|a| a == "--analyze");
    let events = arg("--events", if quick { 20_000 } else { 1_000_000 }).max(PER_TX);
    let url =
        std::env::var("ES_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let prefix = format!("scale{}_", &Uuid::now_v7().simple().to_string()[20..]);
    let store = PgOptions::new(url).table_prefix(&prefix).max_connections(4).open().await?;
    for table in ["events", "outbox", "checkpoints"] {
        let sql = format!("ALTER TABLE {} SET (autovacuum_enabled = false)", store.table(table));
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(store.pool()).await?;
    }
    let outcome = run(&store, events, analyze).await;
    for table in es::postgres::TABLE_NAMES.into_iter().chain(["counts"]) {
        let sql = format!("DROP TABLE IF EXISTS {} CASCADE", store.table(table));
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(store.pool()).await?;
    }
    outcome
}

async fn run(store: &PgStore, events: usize, analyze: bool) -> Result<(), BoxError> {
    let transactions = events / PER_TX;
    let total = (transactions * PER_TX) as u64;
    let start = Instant::now();
    let mut versions = vec![0u64; STREAMS];
    for tx in 0..transactions {
        let stream = tx % STREAMS;
        let batch = (0..PER_TX).map(|i| new_event(versions[stream] + i as u64)).collect();
        let expected =
            if versions[stream] == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(versions[stream]) };
        versions[stream] =
            store.append(Account::stream_type(), &format!("acc-{stream:04}"), expected, batch).await?.version;
    }
    #[allow(clippy::cast_precision_loss, reason = "event counts are far below 2^52")]
    let append_rate = total as f64 / start.elapsed().as_secs_f64();
    println!(
        "PostgreSQL, {total} events of ~{} bytes over {STREAMS} streams, tables {}; append: {append_rate:.0} events/s",
        new_event(1).payload.len(),
        if analyze { "analysed" } else { "never analysed" }
    );
    if analyze {
        let sql = format!("ANALYZE {}, {}", store.table("events"), store.table("outbox"));
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(store.pool()).await?;
    }

    let sink = CountingSink::default();
    let mut relay =
        Relay::new(store.clone(), sink.clone(), RelayOptions { batch_size: 256, ..RelayOptions::default() });
    let mut tenths = Tenths::new(total);
    while relay.run_once().await?.delivered > 0 {
        tenths.record(sink.events.load(Ordering::Relaxed));
    }
    assert_eq!(sink.events.load(Ordering::Relaxed), total, "every event delivered once");
    tenths.report("relay drain");

    let table = store.table("counts");
    let mut runner = ProjectionRunner::new(store.clone(), Counts { table }).batch_size(1_000);
    let mut tenths = Tenths::new(total);
    let mut applied = 0;
    loop {
        let report = runner.run_once().await?;
        if report.applied == 0 && report.skipped == 0 {
            break;
        }
        applied += report.applied;
        tenths.record(applied);
    }
    assert_eq!(applied, total, "every event projected once");
    tenths.report("projection catch-up");
    Ok(())
}

fn main() -> Result<(), BoxError> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(bench())
}
