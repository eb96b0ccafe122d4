//! The PostgreSQL store against a raw sqlx loop doing the same work on the same server
//! and the same tables, in one run.
//!
//! The raw side is what a careful hand-written loop does: prepared statements (sqlx
//! caches them per connection), multi-row statements through `UNNEST` arrays rather
//! than one `INSERT` per event, and no column it does not need. Both sides share one
//! pool on the same server, write to fresh tables created by `es` (so the schema and
//! indexes are identical), and run in interleaved rounds (the side that goes first
//! alternates); each figure is the median of the rounds.
//!
//! - **append, 1 event per transaction**: `EventStore::append` (one statement, its own
//!   transaction, that checks the version and inserts the events, their outbox rows and
//!   a notification: 1 round trip) against the best hand-written SQL for the same rows
//!   in the same shape: one statement whose CTEs read the stream's last version, insert
//!   the events (`UNNEST`) only when it matches, and insert their outbox rows,
//!   returning how many it wrote (1 round trip),
//!   over many streams, each append with the stream's correct expected version. The
//!   difference is what the store adds: the stale-writer check, the notification, the
//!   metadata column, and the library's own work.
//! - **append, 100 events per transaction**: the same with 100 events per append.
//! - **rehydrate** a 10,000-event stream (in a table that holds other streams too):
//!   `EventStore::load` (reading and checking every stored column) against `SELECT stream_version, event_type,
//!   payload … ORDER BY stream_version`, streamed, each row's version checked and its
//!   payload decoded by `serde_json` straight into the event and applied.
//! - **relay** a backlog to an in-process sink that counts: `Relay::run_once` until
//!   drained against a loop that selects the outbox rows joined to their events in
//!   order (batches of 256), hands them to the same sink and deletes them with
//!   `DELETE … WHERE position = ANY($1)`.
//!
//! Run: `cargo bench --features postgres --bench postgres` (add `-- --quick` for a
//! smoke run, `-- --rounds R` to change the number of rounds). The server is
//! `ES_TEST_DATABASE_URL`, or `postgres://postgres@127.0.0.1:5432/test`.

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use es::postgres::{PgOptions, PgStore};
use es::sink::Sink;
use es::{
    Aggregate, Cursor, EventStore, ExpectedVersion, Metadata, NewEvent, Relay, RelayOptions, StoredEvent, Timestamp,
};
use futures_util::TryStreamExt;
use sqlx::{AssertSqlSafe, PgPool, Row};
use uuid::Uuid;

mod common;

use common::{Account, BoxError, CountingSink, Pair, arg, median, new_event, raw_decode};

// ---------------------------------------------------------------------------------
// The raw side: hand-written SQL on the tables `es` created.

/// The raw statements for one table prefix.
struct RawSql {
    append: String,
    /// The same append without the outbox rows: what a store without an outbox writes.
    append_events_only: String,
    read_stream: String,
    fetch_outbox: String,
    delete_outbox: String,
}

impl RawSql {
    fn new(prefix: &str) -> Self {
        let (events, outbox) = (format!("{prefix}events"), format!("{prefix}outbox"));
        Self {
            append: format!(
                "WITH last AS (
                     SELECT COALESCE(MAX(stream_version), 0) AS version FROM {events}
                     WHERE stream_type = $1 AND stream_id = $2
                 ), inserted AS (
                     INSERT INTO {events} (event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, payload)
                     SELECT e.event_id, $1, $2, last.version + e.ord, e.event_type, e.schema_version, e.occurred_at, e.payload
                     FROM last, UNNEST($4::uuid[], $5::text[], $6::int4[], $7::int8[], $8::text[])
                          WITH ORDINALITY AS e(event_id, event_type, schema_version, occurred_at, payload, ord)
                     WHERE last.version = $3
                     RETURNING position
                 ), queued AS (
                     INSERT INTO {outbox} (position, stream_type, stream_id) SELECT position, $1, $2 FROM inserted
                 )
                 SELECT COUNT(*) FROM inserted"
            ),
            append_events_only: format!(
                "WITH last AS (
                     SELECT COALESCE(MAX(stream_version), 0) AS version FROM {events}
                     WHERE stream_type = $1 AND stream_id = $2
                 ), inserted AS (
                     INSERT INTO {events} (event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, payload)
                     SELECT e.event_id, $1, $2, last.version + e.ord, e.event_type, e.schema_version, e.occurred_at, e.payload
                     FROM last, UNNEST($4::uuid[], $5::text[], $6::int4[], $7::int8[], $8::text[])
                          WITH ORDINALITY AS e(event_id, event_type, schema_version, occurred_at, payload, ord)
                     WHERE last.version = $3
                     RETURNING position
                 )
                 SELECT COUNT(*) FROM inserted"
            ),
            read_stream: format!(
                "SELECT stream_version, event_type, payload FROM {events}
                 WHERE stream_type = $1 AND stream_id = $2 ORDER BY stream_version"
            ),
            fetch_outbox: format!(
                "SELECT e.position, e.event_id, e.stream_type, e.stream_id, e.stream_version, e.event_type,
                        e.schema_version, e.occurred_at, e.metadata, e.payload
                 FROM {outbox} o JOIN {events} e ON e.position = o.position ORDER BY o.position LIMIT $1"
            ),
            delete_outbox: format!("DELETE FROM {outbox} WHERE position = ANY($1)"),
        }
    }
}

/// Checks the version and inserts the events and their outbox rows in one statement
/// (its own transaction). Returns the new version.
async fn raw_append(
    pool: &PgPool,
    sql: &str,
    stream_type: &str,
    stream_id: &str,
    expected: u64,
    events: Vec<NewEvent>,
) -> Result<u64, BoxError> {
    let count = events.len();
    let (mut ids, mut types, mut versions, mut times, mut payloads) = (
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
    );
    for event in events {
        ids.push(event.event_id);
        types.push(event.event_type);
        versions.push(i32::try_from(event.schema_version)?);
        times.push(event.occurred_at.as_unix_micros());
        payloads.push(event.payload);
    }
    // One statement, so its own transaction, as the store does.
    let written: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(stream_type)
        .bind(stream_id)
        .bind(i64::try_from(expected)?)
        .bind(&ids)
        .bind(&types)
        .bind(&versions)
        .bind(&times)
        .bind(&payloads)
        .fetch_one(pool)
        .await?;
    if usize::try_from(written)? != count {
        return Err(format!("{stream_type}/{stream_id}: not at version {expected}").into());
    }
    Ok(expected + count as u64)
}

/// The raw rehydration: the rows streamed, each version checked, each payload decoded
/// from the row and applied.
async fn raw_rehydrate(pool: &PgPool, sql: &RawSql, stream_id: &str) -> Result<(Account, u64), BoxError> {
    let mut rows =
        sqlx::query(AssertSqlSafe(sql.read_stream.as_str())).bind(Account::stream_type()).bind(stream_id).fetch(pool);
    let mut account = Account::default();
    let mut version = 0;
    while let Some(row) = rows.try_next().await? {
        let found: i64 = row.try_get(0)?;
        if found != version + 1 {
            return Err(format!("{stream_id}: expected version {}, got {found}", version + 1).into());
        }
        version = found;
        let event = raw_decode(row.try_get(1)?, row.try_get(2)?)?;
        account.apply(&event);
    }
    Ok((account, u64::try_from(version)?))
}

/// One batch of undelivered rows, in order, as the events the sink takes.
async fn raw_fetch(pool: &PgPool, sql: &RawSql, limit: i64) -> Result<Vec<StoredEvent>, BoxError> {
    let rows = sqlx::query(AssertSqlSafe(sql.fetch_outbox.as_str())).bind(limit).fetch_all(pool).await?;
    let mut batch = Vec::with_capacity(rows.len());
    for row in rows {
        let metadata: Option<String> = row.try_get(8)?;
        batch.push(StoredEvent {
            event_id: row.try_get(1)?,
            stream_type: row.try_get(2)?,
            stream_id: row.try_get(3)?,
            stream_version: u64::try_from(row.try_get::<i64, _>(4)?)?,
            cursor: Cursor::at_position(u64::try_from(row.try_get::<i64, _>(0)?)?),
            event_type: row.try_get(5)?,
            schema_version: u32::try_from(row.try_get::<i32, _>(6)?)?,
            occurred_at: Timestamp::from_unix_micros(row.try_get(7)?),
            metadata: match metadata {
                None => Metadata::default(),
                Some(text) => serde_json::from_str(&text)?,
            },
            payload: row.try_get(9)?,
        });
    }
    Ok(batch)
}

// ---------------------------------------------------------------------------------
// Workloads.

/// Appends in an order that visits streams round robin: `(stream index, events)`.
fn append_workload(transactions: usize, streams: usize, per_tx: usize) -> Vec<(usize, Vec<NewEvent>)> {
    let mut next = vec![0; streams];
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

/// Fresh tables, created by `es`, under a prefix no earlier run used.
async fn fresh_store(pool: &PgPool) -> Result<PgStore, BoxError> {
    let prefix = format!("bench{}_", &Uuid::now_v7().simple().to_string()[20..]);
    Ok(PgOptions::with_pool(pool.clone()).table_prefix(prefix).open().await?)
}

async fn drop_tables(store: &PgStore) -> Result<(), BoxError> {
    for table in es::postgres::TABLE_NAMES {
        let sql = format!("DROP TABLE IF EXISTS {} CASCADE", store.table(table));
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(store.pool()).await?;
    }
    Ok(())
}

async fn es_append(
    store: &PgStore,
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
    pool: &PgPool,
    sql: &RawSql,
    ids: &[String],
    versions: &mut [u64],
    work: Vec<(usize, Vec<NewEvent>)>,
) -> Result<(), BoxError> {
    for (stream, events) in work {
        versions[stream] =
            raw_append(pool, &sql.append, Account::stream_type(), &ids[stream], versions[stream], events).await?;
    }
    Ok(())
}

/// `transactions` appends of `per_tx` events over `streams` fresh streams in fresh
/// tables, with es or raw; returns the time the appends took.
async fn append_round(
    pool: &PgPool,
    use_es: bool,
    transactions: usize,
    streams: usize,
    per_tx: usize,
) -> Result<Duration, BoxError> {
    let store = fresh_store(pool).await?;
    let ids = stream_ids("acc", streams);
    let mut versions = vec![0; streams];
    let work = append_workload(transactions, streams, per_tx);
    let start = Instant::now();
    if use_es {
        es_append(&store, &ids, &mut versions, work).await?;
    } else {
        let sql = RawSql::new(&store.table(""));
        raw_append_all(pool, &sql, &ids, &mut versions, work).await?;
    }
    let elapsed = start.elapsed();
    assert_eq!(versions.iter().sum::<u64>(), (transactions * per_tx) as u64, "every event appended");
    let count: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {}", store.table("outbox"))))
        .fetch_one(pool)
        .await?;
    assert_eq!(usize::try_from(count)?, transactions * per_tx, "every event has its outbox row");
    drop_tables(&store).await?;
    Ok(elapsed)
}

/// Fresh tables with a backlog of `events` undelivered events; then the time to relay
/// them all, with es or raw.
async fn relay_round(pool: &PgPool, use_es: bool, events: usize) -> Result<Duration, BoxError> {
    const PER_TX: usize = 100;
    const STREAMS: usize = 50;
    let store = fresh_store(pool).await?;
    let ids = stream_ids("acc", STREAMS);
    let mut versions = vec![0; STREAMS];
    es_append(&store, &ids, &mut versions, append_workload(events / PER_TX, STREAMS, PER_TX)).await?;
    sqlx::raw_sql(AssertSqlSafe(format!("ANALYZE {}, {}", store.table("events"), store.table("outbox"))))
        .execute(pool)
        .await?;
    let sink = CountingSink::default();
    let start = Instant::now();
    if use_es {
        let options = RelayOptions { batch_size: 256, ..RelayOptions::default() };
        let mut relay = Relay::new(store.clone(), sink.clone(), options);
        while relay.run_once().await?.delivered > 0 {}
    } else {
        let sql = RawSql::new(&store.table(""));
        loop {
            let batch = raw_fetch(pool, &sql, 256).await?;
            if batch.is_empty() {
                break;
            }
            sink.deliver(&batch, es::LeaseGeneration::new(1)).await?;
            let positions: Vec<i64> =
                batch.iter().map(|event| i64::try_from(event.cursor.position)).collect::<Result<_, _>>()?;
            sqlx::query(AssertSqlSafe(sql.delete_outbox.as_str())).bind(&positions).execute(pool).await?;
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(sink.events.load(Ordering::Relaxed), (events / PER_TX * PER_TX) as u64, "every event delivered once");
    drop_tables(&store).await?;
    Ok(elapsed)
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

#[allow(clippy::too_many_lines, reason = "the whole run, in order")]
async fn bench() -> Result<(), BoxError> {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick {
        Sizes {
            rounds: 3,
            single_tx: 200,
            single_streams: 50,
            batch_tx: 20,
            batch_streams: 10,
            stream_events: 10_000,
            rehydrates: 1,
            relay_events: 2_000,
        }
    } else {
        Sizes {
            rounds: 7,
            single_tx: 1_000,
            single_streams: 200,
            batch_tx: 100,
            batch_streams: 20,
            stream_events: 10_000,
            rehydrates: 3,
            relay_events: 10_000,
        }
    };
    let rounds = arg("--rounds", sizes.rounds).max(1);
    let url =
        std::env::var("ES_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(&url).await?;
    let server: String = sqlx::query_scalar("SHOW server_version").fetch_one(&pool).await?;
    let synchronous: String = sqlx::query_scalar("SHOW synchronous_commit").fetch_one(&pool).await?;

    // The rehydration fixture: the stream of interest interleaved with three others,
    // written by es and read by both sides.
    let fixture = fresh_store(&pool).await?;
    let ids = stream_ids("acc", 4);
    let mut versions = vec![0; 4];
    es_append(&fixture, &ids, &mut versions, append_workload(sizes.stream_events / 100 * 4, 4, 100)).await?;
    sqlx::raw_sql(AssertSqlSafe(format!("ANALYZE {}", fixture.table("events")))).execute(&pool).await?;
    let fixture_sql = RawSql::new(&fixture.table(""));
    let target = ids[0].clone();

    println!(
        "PostgreSQL {server} (synchronous_commit={synchronous}), one client, {rounds} interleaved rounds, medians; payloads ~{} bytes{}",
        new_event(1).payload.len(),
        if quick { " [--quick]" } else { "" }
    );
    let (mut single, mut batch, mut rehydrate, mut relay) =
        (Pair::default(), Pair::default(), Pair::default(), Pair::default());
    for round in 0..rounds {
        let es_first = round % 2 == 0;
        let pool = &pool;
        single.measure(es_first, |use_es| append_round(pool, use_es, sizes.single_tx, sizes.single_streams, 1)).await?;
        batch.measure(es_first, |use_es| append_round(pool, use_es, sizes.batch_tx, sizes.batch_streams, 100)).await?;
        rehydrate
            .measure(es_first, |use_es| {
                let (store, sql, target) = (&fixture, &fixture_sql, target.clone());
                async move {
                    let start = Instant::now();
                    for _ in 0..sizes.rehydrates {
                        let (version, deposits) = if use_es {
                            let loaded = store.load::<Account>(&target).await?;
                            (loaded.version(), black_box(loaded.state()).deposits)
                        } else {
                            let (account, count) = raw_rehydrate(pool, sql, &target).await?;
                            (count, black_box(&account).deposits)
                        };
                        assert_eq!(version, sizes.stream_events as u64);
                        assert!(deposits > 0);
                    }
                    Ok(start.elapsed())
                }
            })
            .await?;
        relay.measure(es_first, |use_es| relay_round(pool, use_es, sizes.relay_events)).await?;
    }
    single.report("append 1 event/tx", sizes.single_tx, "tx");
    batch.report("append 100 events/tx", sizes.batch_tx * 100, "events");
    rehydrate.report(
        &format!("rehydrate {}-event stream", sizes.stream_events),
        sizes.stream_events * sizes.rehydrates,
        "events",
    );
    relay.report("relay to in-process sink", sizes.relay_events, "events");
    diagnose(&pool, &fixture, &target, sizes.stream_events).await?;
    diagnose_outbox(&pool).await?;
    drop_tables(&fixture).await?;
    Ok(())
}

/// Where the time of the slower workloads goes: the same statements with parts of the
/// work left out, medians of 5 repetitions each.
async fn diagnose(pool: &PgPool, fixture: &PgStore, target: &str, stream_events: usize) -> Result<(), BoxError> {
    async fn time<F, Fut>(mut run: F) -> Result<Duration, BoxError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        let mut samples = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            run().await?;
            samples.push(start.elapsed());
        }
        Ok(median(&samples))
    }
    let stream_type = Account::stream_type();
    let sql = RawSql::new(&fixture.table(""));
    let es_select = format!(
        "SELECT transaction_id::text, position, event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload
         FROM {} WHERE stream_type = $1 AND stream_id = $2 AND stream_version >= $3 ORDER BY stream_version",
        fixture.table("events")
    );
    let full = time(|| async {
        black_box(fixture.load::<Account>(target).await?);
        Ok(())
    })
    .await?;
    let read_only = time(|| async {
        black_box(fixture.read_stream(stream_type, target, 0).await?);
        Ok(())
    })
    .await?;
    let es_shape_rows = time(|| async {
        let rows = sqlx::query(AssertSqlSafe(es_select.as_str()))
            .bind(stream_type)
            .bind(target)
            .bind(0_i64)
            .fetch_all(pool)
            .await?;
        black_box(rows);
        Ok(())
    })
    .await?;
    let narrow_rows = time(|| async {
        let rows =
            sqlx::query(AssertSqlSafe(sql.read_stream.as_str())).bind(stream_type).bind(target).fetch_all(pool).await?;
        black_box(rows);
        Ok(())
    })
    .await?;
    let raw_full = time(|| async {
        black_box(raw_rehydrate(pool, &sql, target).await?);
        Ok(())
    })
    .await?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "diagnosis, rehydrate {stream_events} events (ms): es total {:.1} = read_stream {:.1} (of which the 11-column SELECT's rows alone {:.1}) + decode/apply {:.1}; raw total {:.1}, its 3-column SELECT's rows alone {:.1}",
        ms(full),
        ms(read_only),
        ms(es_shape_rows),
        ms(full.saturating_sub(read_only)),
        ms(raw_full),
        ms(narrow_rows)
    );

    // The relay's fetch: the same first batch of a backlog, fetched without deleting.
    let store = fresh_store(pool).await?;
    let ids = stream_ids("acc", 50);
    let mut versions = vec![0; 50];
    es_append(&store, &ids, &mut versions, append_workload(20, 50, 100)).await?;
    sqlx::raw_sql(AssertSqlSafe(format!("ANALYZE {}, {}", store.table("events"), store.table("outbox"))))
        .execute(pool)
        .await?;
    let backlog_sql = RawSql::new(&store.table(""));
    let es_fetch = time(|| async {
        black_box(es::relay::Outbox::fetch(&store, 256, es::Clock::now(&es::SystemClock)).await?);
        Ok(())
    })
    .await?;
    let raw_fetch_time = time(|| async {
        black_box(raw_fetch(pool, &backlog_sql, 256).await?);
        Ok(())
    })
    .await?;
    println!("diagnosis, relay: fetching one batch of 256 (ms): es {:.2}, raw {:.2}", ms(es_fetch), ms(raw_fetch_time));
    drop_tables(&store).await?;
    Ok(())
}

/// What the outbox row costs a command: 200 single-event appends by the raw SQL with
/// and without the outbox insert, on fresh tables, taking turns; medians of 6.
async fn diagnose_outbox(pool: &PgPool) -> Result<(), BoxError> {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (mut with_outbox, mut events_only) = (Vec::new(), Vec::new());
    for round in 0..6 {
        let store = fresh_store(pool).await?;
        let sql = RawSql::new(&store.table(""));
        let ids = stream_ids("acc", 50);
        let outbox_first = round % 2 == 0;
        for outbox in [outbox_first, !outbox_first] {
            let statement = if outbox { &sql.append } else { &sql.append_events_only };
            let prefix = if outbox { "o" } else { "e" };
            let mut versions = vec![0; ids.len()];
            let start = Instant::now();
            for (stream, events) in append_workload(200, ids.len(), 1) {
                let id = format!("{prefix}{}", ids[stream]);
                versions[stream] =
                    raw_append(pool, statement, Account::stream_type(), &id, versions[stream], events).await?;
            }
            (if outbox { &mut with_outbox } else { &mut events_only }).push(start.elapsed());
        }
        drop_tables(&store).await?;
    }
    let (with_outbox, events_only) = (median(&with_outbox), median(&events_only));
    println!(
        "diagnosis, the outbox row: 200 single-event commands by raw SQL take {:.1} ms with it, {:.1} ms without ({:.0}% of the time without)",
        ms(with_outbox),
        ms(events_only),
        events_only.as_secs_f64() / with_outbox.as_secs_f64() * 100.0
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(bench())
}
