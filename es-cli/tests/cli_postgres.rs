//! The `es` binary on a PostgreSQL server (`ES_TEST_DATABASE_URL`, or the local
//! one): the same commands as on SQLite, over a `postgres://` URL, each test on tables
//! of its own prefix.

mod support;

use es_core::postgres::{PgOptions, PgStore};
use es_core::relay::Outbox;
use es_core::sink::ChannelSink;
use es_core::{Relay, RelayOptions};
use sqlx::AssertSqlSafe;
use support::{Run, es, seed};

fn url() -> String {
    std::env::var("ES_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A store on tables of its own, filled with [`support::STREAMS`].
async fn seeded() -> (PgStore, String) {
    let prefix = format!("c{}_", &uuid::Uuid::now_v7().simple().to_string()[16..]);
    let store = PgOptions::new(url()).table_prefix(&prefix).max_connections(2).open().await.unwrap_or_else(|error| {
        panic!("cannot reach PostgreSQL at {}: {error}; start it or set ES_TEST_DATABASE_URL", url())
    });
    seed(&store).await;
    (store, prefix)
}

async fn sql(store: &PgStore, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(store.pool()).await.unwrap();
}

async fn drop_tables(store: &PgStore) {
    for table in ["outbox", "events", "checkpoints", "skipped", "relay_lease", "snapshots", "schema"] {
        sql(store, &format!("DROP TABLE IF EXISTS {} CASCADE", store.table(table))).await;
    }
}

/// Drops the constraints of `table` of kind `kind` (`u` unique, `f` foreign key), as a
/// careless restore would, so that damage can be written at all.
async fn drop_constraints(store: &PgStore, table: &str, kind: &str) {
    let table = store.table(table);
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT conname::text FROM pg_constraint WHERE conrelid = $1::regclass AND contype = $2::\"char\"",
    )
    .bind(&table)
    .bind(kind)
    .fetch_all(store.pool())
    .await
    .unwrap();
    for name in names {
        sql(store, &format!("ALTER TABLE {table} DROP CONSTRAINT \"{name}\"")).await;
    }
}

fn cli(prefix: &str, args: &[&str]) -> Run {
    let url = url();
    let mut all = vec!["--db", url.as_str(), "--prefix", prefix];
    all.extend_from_slice(args);
    es(&all)
}

#[track_caller]
fn assert_reports(run: &Run, kind: &str, location: &str) {
    assert_eq!(run.code, 1, "verify should exit 1\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.lines().any(|line| line.starts_with(kind) && line.contains(location)),
        "no `{kind}` line naming `{location}` in:\n{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_clean_store_verifies_and_reads_like_on_sqlite() {
    let (store, prefix) = seeded().await;
    let run = cli(&prefix, &["verify"]).expect_code(0);
    assert!(run.stdout.contains("verified 6 events in 3 streams"), "{}", run.stdout);
    let streams = cli(&prefix, &["streams", "--json"]).expect_code(0).json();
    assert_eq!(streams["streams"].as_array().unwrap().len(), 3);
    assert_eq!(streams["streams"][0]["stream_id"], "a-1");
    let events = cli(&prefix, &["stream", "a-1", "--json", "--from", "2"]).expect_code(0).json();
    assert_eq!(events.as_array().unwrap().len(), 2);
    assert_eq!(events[1]["payload"]["amount"], 3);
    // Cursors on PostgreSQL carry the commit: tail resumes from one it printed.
    let tail = cli(&prefix, &["tail", "--json"]).expect_code(0);
    let lines: Vec<serde_json::Value> = tail.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 6);
    let cursor = lines[3]["cursor"].as_str().unwrap().to_owned();
    assert!(cursor.contains(':'), "{cursor}");
    let rest = cli(&prefix, &["tail", "--from", &cursor]).expect_code(0);
    assert_eq!(rest.stdout.lines().count(), 2, "{}", rest.stdout);
    cli(&prefix, &["tail", "--from", "3"]).expect_code(2);
    cli(&prefix, &["migrate", "--check"]).expect_code(0);
    drop_tables(&store).await;
}

#[tokio::test]
async fn gaps_repeats_and_bad_payloads_are_reported() {
    let (store, prefix) = seeded().await;
    let (events, outbox) = (store.table("events"), store.table("outbox"));
    drop_constraints(&store, "events", "u").await;
    sql(
        &store,
        &format!(
            "DELETE FROM {outbox} WHERE position = 2; DELETE FROM {events} WHERE position = 2;
             INSERT INTO {events} (event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, payload)
                 SELECT event_id, 'Account', 'a-2', 2, 'Deposited', 1, 0, '{{\"amount\":' FROM {events} WHERE position = 6;"
        ),
    )
    .await;
    let run = cli(&prefix, &["verify"]);
    assert_reports(&run, "version_gap", "stream Account/a-1 version 3 (position 3)");
    // Rows sharing a key come in either order on PostgreSQL: the repeat is named, not
    // which of its two rows came second.
    assert_reports(&run, "version_repeated", "stream Account/a-2 version 2");
    assert_reports(&run, "duplicate_event_id", "stream Account/a-2 version 2 (position 7)");
    assert_reports(&run, "invalid_payload", "stream Account/a-2 version 2 (position 7)");
    drop_tables(&store).await;
}

#[tokio::test]
async fn outbox_checkpoint_and_snapshot_damage_is_reported() {
    let (store, prefix) = seeded().await;
    drop_constraints(&store, "outbox", "f").await;
    sql(
        &store,
        &format!(
            "INSERT INTO {} (position, stream_type, stream_id) VALUES (99, 'Account', 'ghost');
             INSERT INTO {} (projection, position) VALUES ('balances', 40);
             INSERT INTO {} (stream_type, stream_id, stream_version, schema_version, state, taken_at)
                 VALUES ('Account', 'a-2', 5, 1, '{{}}', 0);",
            store.table("outbox"),
            store.table("checkpoints"),
            store.table("snapshots")
        ),
    )
    .await;
    let run = cli(&prefix, &["verify"]);
    assert_reports(&run, "orphaned_outbox_row", "stream Account/ghost (position 99)");
    assert_reports(&run, "checkpoint_ahead", "projection balances (position 40)");
    assert_reports(&run, "snapshot_ahead", "stream Account/a-2 version 5");
    assert!(run.stdout.contains("3 problems"), "{}", run.stdout);
    let states = cli(&prefix, &["projections", "--json"]).expect_code(0).json();
    assert_eq!(states[0]["name"], "balances");
    cli(&prefix, &["projections", "reset", "balances"]).expect_code(1);
    cli(&prefix, &["projections", "reset", "balances", "--yes"]).expect_code(0);
    assert_eq!(cli(&prefix, &["projections", "--json"]).expect_code(0).json(), serde_json::json!([]));
    drop_tables(&store).await;
}

#[tokio::test]
async fn a_parked_row_requeued_is_then_delivered_by_a_relay() {
    let (store, prefix) = seeded().await;
    sql(
        &store,
        &format!(
            "UPDATE {} SET parked = true, blocked_until = 9223372036854775807, attempts = 8, last_error = 'sink said no' WHERE position = 4",
            store.table("outbox")
        ),
    )
    .await;
    let status = cli(&prefix, &["outbox", "--json"]).expect_code(0).json();
    assert_eq!((status["pending"].as_u64(), status["parked"].as_u64()), (Some(6), Some(1)));
    let parked = cli(&prefix, &["outbox", "parked", "--json"]).expect_code(0).json();
    assert_eq!(parked[0]["position"], 4);
    assert_eq!(parked[0]["last_error"], "sink said no");

    let (sink, mut delivered) = ChannelSink::new(16);
    let mut relay = Relay::new(store.clone(), sink, RelayOptions::default());
    relay.run_once().await.unwrap();
    let mut first = Vec::new();
    while let Ok(event) = delivered.try_recv() {
        first.push(event.event.cursor.position);
    }
    assert_eq!(first, [1, 2, 3, 6]);
    cli(&prefix, &["outbox", "requeue", "4"]).expect_code(0);
    cli(&prefix, &["outbox", "requeue", "4"]).expect_code(1);
    relay.run_once().await.unwrap();
    let mut second = Vec::new();
    while let Ok(event) = delivered.try_recv() {
        second.push(event.event.cursor.position);
    }
    assert_eq!(second, [4, 5]);
    assert_eq!(store.status().await.unwrap().pending, 0);
    relay.release().await.unwrap();
    drop_tables(&store).await;
}

#[tokio::test]
async fn migrate_check_finds_an_old_schema_and_migrate_upgrades_it() {
    let (store, prefix) = seeded().await;
    let schema = store.table("schema");
    let latest: i32 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT MAX(version) FROM {schema}")))
        .fetch_one(store.pool())
        .await
        .unwrap();
    // The schema before the latest migration: no durable subscriptions table yet.
    sql(
        &store,
        &format!("DROP TABLE {}; DELETE FROM {schema} WHERE version = {latest};", store.table("subscriptions")),
    )
    .await;
    let check = cli(&prefix, &["migrate", "--check"]).expect_code(1);
    assert!(check.stdout.contains("an upgrade is pending"), "{}", check.stdout);
    let refused = cli(&prefix, &["verify"]).expect_code(2);
    assert!(refused.stderr.contains("es migrate"), "{}", refused.stderr);
    cli(&prefix, &["migrate"]).expect_code(0);
    cli(&prefix, &["verify"]).expect_code(0);
    sql(&store, &format!("INSERT INTO {schema} (version, applied_at) VALUES ({}, 0)", latest + 1)).await;
    let newer = cli(&prefix, &["streams"]).expect_code(2);
    assert!(newer.stderr.contains(&format!("newer than version {latest}")), "{}", newer.stderr);
    drop_tables(&store).await;
}

#[test]
fn an_unreachable_server_is_a_connection_error() {
    let run = es(&["verify", "--db", "postgres://nobody:secret@127.0.0.1:1/none"]).expect_code(2);
    assert!(run.stderr.contains("check the URL"), "{}", run.stderr);
    assert!(!run.stderr.contains("secret"), "the password stays out of messages: {}", run.stderr);
}
