//! The `es` binary on real SQLite files: a clean store verifies, each kind of damage
//! written behind the library's back is reported where it stands with exit 1, and the
//! inspecting and repairing commands do what they say.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use es_core::relay::Outbox;
use es_core::sink::ChannelSink;
use es_core::sqlite::SqliteStore;
use es_core::{EventStore, Relay, RelayOptions};
use support::{Run, es, seed};

/// A store filled with [`support::STREAMS`], closed again; returns its directory
/// (kept while the test runs) and path.
async fn seeded() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).await.unwrap();
    seed(&store).await;
    drop(store);
    (dir, path)
}

/// Runs SQL on the file behind the library's back (foreign keys off, as in a plain
/// `sqlite3` shell).
fn tamper(path: &Path, sql: &str) {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    connection.execute_batch(sql).unwrap();
}

/// The schema version the library writes (the file's, once opened by the library).
fn schema_version(path: &Path) -> i64 {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection.query_row("SELECT MAX(version) FROM es_schema", [], |row| row.get(0)).unwrap()
}

fn verify(path: &Path) -> Run {
    es(&["verify", "--db", path.to_str().unwrap()])
}

/// Asserts a verify run found problems and names `kind` at `location`.
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
async fn a_clean_store_verifies_with_exit_0() {
    let (_dir, path) = seeded().await;
    let run = verify(&path).expect_code(0);
    assert!(run.stdout.contains("verified 6 events in 3 streams"), "{}", run.stdout);
    assert!(run.stdout.contains("no problems"), "{}", run.stdout);
    assert!(run.stdout.contains("rows/s"), "the rate is reported: {}", run.stdout);
    // Not a terminal: nothing but the report, no progress bar on stderr.
    assert_eq!(run.stderr, "");
    let json = es(&["verify", "--json", "--db", path.to_str().unwrap()]).expect_code(0).json();
    assert_eq!(json["problems_found"], 0);
    assert_eq!(json["events"], 6);
    assert!(json["rows_per_second"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn small_pages_find_the_same_as_one() {
    let (_dir, path) = seeded().await;
    // Version 2 of a-2 gone: the gap must be found across page boundaries too.
    tamper(&path, "DELETE FROM es_outbox WHERE position = 5; DELETE FROM es_events WHERE position = 5;");
    tamper(
        &path,
        "INSERT INTO es_events (event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, payload) VALUES (randomblob(16), 'Account', 'a-2', 4, 'Deposited', 1, 0, '{}')",
    );
    for page in ["1", "2", "3", "1000"] {
        let run = es(&["verify", "--page-size", page, "--db", path.to_str().unwrap()]);
        assert_reports(&run, "version_gap", "stream Account/a-2 version 4");
        assert!(run.stdout.contains("1 problem"), "page size {page}: {}", run.stdout);
    }
}

#[tokio::test]
async fn a_version_gap_is_reported_with_its_stream_and_versions() {
    let (_dir, path) = seeded().await;
    // a-1 is at positions 1, 2, 3: remove version 2.
    tamper(&path, "DELETE FROM es_outbox WHERE position = 2; DELETE FROM es_events WHERE position = 2;");
    let run = verify(&path);
    assert_reports(&run, "version_gap", "stream Account/a-1 version 3 (position 3)");
    assert!(run.stdout.contains("expected version 2, got 3"), "{}", run.stdout);
    let json = es(&["verify", "--json", "--db", path.to_str().unwrap()]).expect_code(1).json();
    let problem = &json["problems"][0];
    assert_eq!(problem["kind"], "version_gap");
    assert_eq!(problem["stream_type"], "Account");
    assert_eq!(problem["stream_id"], "a-1");
    assert_eq!(problem["version"], 3);
}

#[tokio::test]
async fn a_stream_that_does_not_start_at_version_1_is_a_gap() {
    let (_dir, path) = seeded().await;
    tamper(&path, "UPDATE es_events SET stream_version = 2 WHERE position = 6");
    assert_reports(&verify(&path), "version_gap", "stream Order/o-1 version 2");
}

/// Rebuilds the events table without its unique constraints, as a careless restore
/// or hand-made copy would, so that repeats can be written at all.
fn drop_unique_constraints(path: &Path) {
    tamper(
        path,
        "CREATE TABLE loose AS SELECT * FROM es_events;
         DROP TABLE es_events;
         ALTER TABLE loose RENAME TO es_events;",
    );
}

#[tokio::test]
async fn a_repeated_version_is_reported() {
    let (_dir, path) = seeded().await;
    drop_unique_constraints(&path);
    tamper(
        &path,
        "INSERT INTO es_events (position, event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload)
         VALUES (7, randomblob(16), 'Account', 'a-2', 2, 'Deposited', 1, 0, NULL, '{\"amount\":9}')",
    );
    let run = verify(&path);
    assert_reports(&run, "version_repeated", "stream Account/a-2 version 2 (position 7)");
    assert!(run.stdout.contains("version 2 is stored twice (positions 5 and 7)"), "{}", run.stdout);
    // Also when the repeat starts a new page: the keyset goes on to the position.
    for page in ["1", "5"] {
        let run = es(&["verify", "--page-size", page, "--db", path.to_str().unwrap()]);
        assert_reports(&run, "version_repeated", "stream Account/a-2 version 2 (position 7)");
    }
}

#[tokio::test]
async fn a_repeated_event_id_is_reported() {
    let (_dir, path) = seeded().await;
    drop_unique_constraints(&path);
    tamper(
        &path,
        "INSERT INTO es_events (position, event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload)
         SELECT 7, event_id, 'Order', 'o-1', 2, 'Deposited', 1, 0, NULL, '{}' FROM es_events WHERE position = 1",
    );
    let run = verify(&path);
    assert_reports(&run, "duplicate_event_id", "stream Order/o-1 version 2 (position 7)");
    assert!(run.stdout.contains("as Account/a-1 version 1 (position 1)"), "{}", run.stdout);
}

#[tokio::test]
async fn invalid_payloads_and_metadata_are_reported() {
    let (_dir, path) = seeded().await;
    tamper(
        &path,
        "UPDATE es_events SET payload = '{\"amount\":' WHERE position = 4;
         UPDATE es_events SET metadata = 'not json' WHERE position = 6;",
    );
    let run = verify(&path);
    assert_reports(&run, "invalid_payload", "stream Account/a-2 version 1 (position 4)");
    assert_reports(&run, "invalid_metadata", "stream Order/o-1 version 1 (position 6)");
    assert!(run.stdout.contains("2 problems"), "{}", run.stdout);
}

#[tokio::test]
async fn values_of_the_wrong_type_are_reported() {
    let (_dir, path) = seeded().await;
    tamper(&path, "UPDATE es_events SET payload = x'7b7d', schema_version = 'one' WHERE position = 3");
    let run = verify(&path);
    assert_reports(&run, "wrong_column_type", "stream Account/a-1 version 3 (position 3)");
    assert!(run.stdout.contains("payload is a blob of 2 bytes, not text"), "{}", run.stdout);
    assert!(run.stdout.contains("schema version is the text \"one\", not an integer"), "{}", run.stdout);
}

#[tokio::test]
async fn versions_out_of_the_logs_order_are_reported() {
    let (_dir, path) = seeded().await;
    // a-1's versions 2 and 3 (positions 2 and 3) swapped.
    tamper(
        &path,
        "UPDATE es_events SET stream_version = 100 WHERE position = 2;
         UPDATE es_events SET stream_version = 2 WHERE position = 3;
         UPDATE es_events SET stream_version = 3 WHERE position = 2;",
    );
    assert_reports(&verify(&path), "position_out_of_order", "stream Account/a-1 version 3 (position 2)");
}

#[tokio::test]
async fn an_orphaned_outbox_row_is_reported() {
    let (_dir, path) = seeded().await;
    tamper(
        &path,
        "INSERT INTO es_outbox (position, stream_type, stream_id) VALUES (99, 'Account', 'ghost');
         UPDATE es_outbox SET stream_id = 'a-9' WHERE position = 4;",
    );
    let run = verify(&path);
    assert_reports(&run, "orphaned_outbox_row", "stream Account/ghost (position 99)");
    assert!(run.stdout.contains("points at no event"), "{}", run.stdout);
    assert_reports(&run, "orphaned_outbox_row", "stream Account/a-9 (position 4)");
    assert!(run.stdout.contains("belongs to Account/a-2"), "{}", run.stdout);
}

#[tokio::test]
async fn a_checkpoint_past_the_head_is_reported() {
    let (_dir, path) = seeded().await;
    tamper(
        &path,
        "INSERT INTO es_checkpoints (projection, position, event_id, updated_at) VALUES ('balances', 40, NULL, 0)",
    );
    let run = verify(&path);
    assert_reports(&run, "checkpoint_ahead", "projection balances (position 40)");
    assert!(run.stdout.contains("past the head of the log at position 6"), "{}", run.stdout);
}

#[tokio::test]
async fn a_snapshot_past_its_stream_is_reported() {
    let (_dir, path) = seeded().await;
    tamper(
        &path,
        "INSERT INTO es_snapshots (stream_type, stream_id, stream_version, schema_version, state, taken_at)
         VALUES ('Account', 'a-2', 5, 1, '{}', 0), ('Account', 'a-1', 3, 1, '{}', 0)",
    );
    let run = verify(&path);
    assert_reports(&run, "snapshot_ahead", "stream Account/a-2 version 5");
    assert!(run.stdout.contains("past the stream's last version 2"), "{}", run.stdout);
    assert!(run.stdout.contains("1 problem"), "the snapshot at the head is sound: {}", run.stdout);
}

#[tokio::test]
async fn verify_reads_without_writing() {
    let (_dir, path) = seeded().await;
    let before = std::fs::read(&path).unwrap();
    verify(&path).expect_code(0);
    es(&["streams", "--db", path.to_str().unwrap()]).expect_code(0);
    assert!(before == std::fs::read(&path).unwrap(), "the database file changed");
}

#[tokio::test]
async fn streams_are_listed_and_paged() {
    let (_dir, path) = seeded().await;
    let db = path.to_str().unwrap();
    let run = es(&["streams", "--db", db]).expect_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("TYPE     ID   VERSION  EVENTS"), "{}", run.stdout);
    assert!(lines[1].starts_with("Account  a-1  3        3"), "{}", run.stdout);
    assert_eq!(lines.len(), 4);
    let run = es(&["streams", "--type", "Account", "--limit", "1", "--db", db]).expect_code(0);
    assert!(run.stdout.contains("a-1") && !run.stdout.contains("a-2"), "{}", run.stdout);
    assert!(run.stderr.contains("es streams --after 'Account/a-1'"), "{}", run.stderr);
    let page = es(&["streams", "--json", "--type", "Account", "--limit", "1", "--after", "Account/a-1", "--db", db])
        .expect_code(0)
        .json();
    assert_eq!(page["streams"][0]["stream_id"], "a-2");
    assert_eq!(page["streams"][0]["version"], 2);
    // a-2 is the last Account stream: no next page.
    assert_eq!(page["next"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_stream_is_printed_with_its_envelopes() {
    let (_dir, path) = seeded().await;
    let db = path.to_str().unwrap();
    let run = es(&["stream", "a-1", "--db", db]).expect_code(0);
    assert_eq!(run.stdout.lines().count(), 4, "{}", run.stdout);
    assert!(run.stdout.contains("{\"amount\":3}"), "{}", run.stdout);
    let events = es(&["stream", "a-1", "--type", "Account", "--from", "2", "--to", "2", "--json", "--db", db])
        .expect_code(0)
        .json();
    assert_eq!(events.as_array().unwrap().len(), 1);
    assert_eq!(events[0]["version"], 2);
    assert_eq!(events[0]["payload"]["amount"], 2);
    assert_eq!(events[0]["event_type"], "Deposited");
    let missing = es(&["stream", "nobody", "--db", db]).expect_code(1);
    assert!(missing.stderr.contains("no stream with id \"nobody\""), "{}", missing.stderr);
}

#[tokio::test]
async fn tail_prints_the_log_in_order_and_resumes_after_a_cursor() {
    let (_dir, path) = seeded().await;
    let db = path.to_str().unwrap();
    let run = es(&["tail", "--db", db]).expect_code(0);
    let positions: Vec<&str> = run.stdout.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(positions, ["1", "2", "3", "4", "5", "6"]);
    let run = es(&["tail", "--from", "4", "--json", "--db", db]).expect_code(0);
    let lines: Vec<serde_json::Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["cursor"], "5");
    assert_eq!(lines[1]["stream_id"], "o-1");
    es(&["tail", "--from", "x:4", "--db", db]).expect_code(2);
    assert_eq!(es(&["tail", "--limit", "2", "--db", db]).expect_code(0).stdout.lines().count(), 2);
}

#[tokio::test]
async fn tail_follow_prints_new_commits() {
    let (_dir, path) = seeded().await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_es"))
        .args(["tail", "--follow", "--from", "6", "--poll-ms", "20", "--db", path.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let store = SqliteStore::open(&path).await.unwrap();
    store.append("Order", "o-1", es_core::ExpectedVersion::Exact(1), support::deposits(1, 50)).await.unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(20), line).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let line = line.expect("a new commit is printed while following").unwrap().unwrap();
    assert!(line.starts_with("7 ") && line.contains("Order/o-1 v2"), "{line}");
}

#[tokio::test]
async fn a_parked_row_requeued_is_then_delivered_by_a_relay() {
    let (_dir, path) = seeded().await;
    let db = path.to_str().unwrap();
    tamper(
        &path,
        "UPDATE es_outbox SET parked = 1, blocked_until = 9223372036854775807, attempts = 8, last_error = 'sink said no' WHERE position = 4",
    );
    let status = es(&["outbox", "--json", "--db", db]).expect_code(0).json();
    assert_eq!(status["pending"], 6);
    assert_eq!(status["parked"], 1);
    assert!(status["lag_seconds"].as_f64().unwrap() > 0.0);
    let parked = es(&["outbox", "parked", "--db", db]).expect_code(0);
    assert!(parked.stdout.contains("4         Account/a-2  8         sink said no"), "{}", parked.stdout);

    // Before the requeue, the relay holds a-2 back; after it, everything goes out.
    let store = SqliteStore::open(&path).await.unwrap();
    let (sink, mut delivered) = ChannelSink::new(16);
    let mut relay = Relay::new(store.clone(), sink, RelayOptions::default());
    relay.run_once().await.unwrap();
    let mut first = Vec::new();
    while let Ok(event) = delivered.try_recv() {
        first.push(event.event.cursor.position);
    }
    assert_eq!(first, [1, 2, 3, 6]);

    let run = es(&["outbox", "requeue", "4", "--db", db]).expect_code(0);
    assert_eq!(run.stdout, "requeued 4\n");
    es(&["outbox", "requeue", "4", "--db", db]).expect_code(1);
    relay.run_once().await.unwrap();
    let mut second = Vec::new();
    while let Ok(event) = delivered.try_recv() {
        second.push(event.event.cursor.position);
    }
    assert_eq!(second, [4, 5]);
    assert_eq!(store.status().await.unwrap().pending, 0);
}

#[tokio::test]
async fn a_parked_row_can_be_skipped_with_a_reason() {
    let (_dir, path) = seeded().await;
    let db = path.to_str().unwrap();
    tamper(
        &path,
        "UPDATE es_outbox SET parked = 1, blocked_until = 9223372036854775807, attempts = 3, last_error = 'x' WHERE position IN (2, 5)",
    );
    es(&["outbox", "skip", "2", "--db", db]).expect_code(2);
    es(&["outbox", "skip", "3", "--reason", "bad", "--db", db]).expect_code(1);
    es(&["outbox", "skip", "2", "--reason", "fixed by hand", "--db", db]).expect_code(0);
    let requeued = es(&["outbox", "requeue", "--all", "--json", "--db", db]).expect_code(0).json();
    assert_eq!(requeued["requeued"], serde_json::json!([5]));
    let reason: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT reason FROM es_skipped WHERE position = 2", [], |r| r.get(0))
        .unwrap();
    assert_eq!(reason, "fixed by hand");
}

#[tokio::test]
async fn projections_show_their_lag_and_reset_only_when_confirmed() {
    let (_dir, path) = seeded().await;
    let db = path.to_str().unwrap();
    tamper(
        &path,
        "INSERT INTO es_checkpoints (projection, position, event_id, updated_at) VALUES ('balances', 2, NULL, 0);
         INSERT INTO es_skipped (position, consumer, reason, skipped_at) VALUES (2, 'projection:balances', 'bad', 0);",
    );
    let states = es(&["projections", "--json", "--db", db]).expect_code(0).json();
    assert_eq!(states[0]["name"], "balances");
    assert_eq!(states[0]["position"], 2);
    assert_eq!(states[0]["behind"], 4);
    assert_eq!(states[0]["skipped"], 1);
    assert!(states[0]["lag_seconds"].as_f64().unwrap() > 0.0);
    let text = es(&["projections", "--db", db]).expect_code(0);
    assert!(text.stdout.lines().nth(1).unwrap().starts_with("balances    2         4"), "{}", text.stdout);

    // No terminal to ask on: refused without --yes.
    let refused = es(&["projections", "reset", "balances", "--db", db]).expect_code(1);
    assert!(refused.stderr.contains("pass --yes"), "{}", refused.stderr);
    es(&["projections", "reset", "nobody", "--yes", "--db", db]).expect_code(1);
    es(&["projections", "reset", "balances", "--yes", "--db", db]).expect_code(0);
    assert_eq!(es(&["projections", "--json", "--db", db]).expect_code(0).json(), serde_json::json!([]));
}

#[tokio::test]
async fn migrate_check_finds_an_old_schema_and_migrate_upgrades_it() {
    let (_dir, path) = seeded().await;
    let db = path.to_str().unwrap();
    es(&["migrate", "--check", "--db", db]).expect_code(0);
    // The schema before the latest migration: no durable subscriptions table yet.
    let latest = schema_version(&path);
    tamper(&path, &format!("DROP TABLE es_subscriptions; DELETE FROM es_schema WHERE version = {latest};"));
    let check = es(&["migrate", "--check", "--db", db]).expect_code(1);
    assert!(check.stdout.contains("an upgrade is pending"), "{}", check.stdout);
    // Other commands refuse it rather than migrate it by the way.
    let refused = verify(&path).expect_code(2);
    assert!(
        refused.stderr.contains(&format!("older than version {latest}")) && refused.stderr.contains("es migrate"),
        "{}",
        refused.stderr
    );
    let run = es(&["migrate", "--db", db]).expect_code(0);
    assert!(run.stdout.contains(&format!("migrated from version {} to {latest}", latest - 1)), "{}", run.stdout);
    es(&["migrate", "--check", "--db", db]).expect_code(0);
    verify(&path).expect_code(0);
}

#[tokio::test]
async fn a_schema_from_a_newer_release_is_refused() {
    let (_dir, path) = seeded().await;
    let latest = schema_version(&path);
    tamper(&path, &format!("INSERT INTO es_schema (version, applied_at) VALUES ({}, 0)", latest + 1));
    let run = verify(&path).expect_code(2);
    assert!(run.stderr.contains(&format!("newer than version {latest}")), "{}", run.stderr);
    es(&["migrate", "--db", path.to_str().unwrap()]).expect_code(2);
}

#[test]
fn usage_and_connection_errors_exit_2_and_say_what_to_do() {
    let run = es(&["verify"]).expect_code(2);
    assert!(run.stderr.contains("pass --db <PATH|URL> or set ES_DATABASE"), "{}", run.stderr);
    let run = es(&["verify", "--db", "/nonexistent/events.db"]).expect_code(2);
    assert!(run.stderr.contains("no database at /nonexistent/events.db"), "{}", run.stderr);
    es(&["verify", "--bogus"]).expect_code(2);
    es(&["verify", "--db", "x.db", "--prefix", "bad;prefix"]).expect_code(2);
    let help = es(&["outbox", "requeue", "--help"]).expect_code(0);
    assert!(help.stdout.contains("Example: es outbox requeue 1234"), "{}", help.stdout);
}

#[tokio::test]
async fn an_empty_file_has_no_es_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    tamper(&path, "CREATE TABLE unrelated (x INTEGER)");
    let run = verify(&path).expect_code(2);
    assert!(run.stderr.contains("holds no es tables"), "{}", run.stderr);
    es(&["migrate", "--db", path.to_str().unwrap()]).expect_code(0);
    verify(&path).expect_code(0);
}

#[tokio::test]
async fn the_database_comes_from_es_database_and_the_tables_from_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let store = es_core::sqlite::SqliteOptions::new(&path).table_prefix("billing_").open().await.unwrap();
    seed(&store).await;
    drop(store);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_es"))
        .args(["streams", "--json", "--prefix", "billing_"])
        .env("ES_DATABASE", &path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let page: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(page["streams"].as_array().unwrap().len(), 3);
    // The default prefix finds no tables there, and says what to check.
    let run = verify(&path).expect_code(2);
    assert!(run.stderr.contains("check --db and --prefix"), "{}", run.stderr);
    es(&["verify", "--prefix", "billing_", "--db", path.to_str().unwrap()]).expect_code(0);
}
