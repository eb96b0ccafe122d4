//! The command line as a library, with the application's aggregate registered:
//! `verify --decode` decodes and folds every stream strictly, `--determinism` folds
//! twice and compares, and `replay` prints the state after each event. The plain
//! binary refuses both with a hint.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Parser;
use es::sqlite::SqliteStore;
use es::{
    Aggregate, Event, EventStore, ExpectedVersion, IdSource, Metadata, NewEvent, RandomIds, Timestamp, aggregate,
};
use es_cli::App;
use es_cli::args::Cli;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum CounterEvent {
    Added {
        by: u64,
    },
    #[event(name = "Reset", version = 2)]
    Reset,
}

#[aggregate]
#[derive(Debug, Default, PartialEq)]
struct Counter {
    total: u64,
}

#[aggregate]
impl Aggregate for Counter {
    type Event = CounterEvent;
    fn apply(&mut self, event: &CounterEvent) {
        match event {
            CounterEvent::Added { by } => self.total += by,
            CounterEvent::Reset => self.total = 0,
        }
    }
}

/// A counter whose fold is not pure: `#[aggregate]` would refuse it, so it is a
/// hand-written impl behind the checker's back, as a bug in trusted code would be.
static FOLDS: AtomicU64 = AtomicU64::new(0);

#[aggregate]
#[derive(Debug, Default, PartialEq)]
struct Drifting {
    seen: u64,
}

#[aggregate(trust(next_fold))]
impl Aggregate for Drifting {
    type Event = CounterEvent;
    fn apply(&mut self, _event: &CounterEvent) {
        self.seen = next_fold();
    }
}

fn next_fold() -> u64 {
    FOLDS.fetch_add(1, Ordering::Relaxed)
}

fn added(by: u64) -> NewEvent {
    NewEvent::encode(&CounterEvent::Added { by }, RandomIds.next_id(), Timestamp::EPOCH, Metadata::default()).unwrap()
}

async fn seeded() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.append("Counter", "c-1", ExpectedVersion::NoStream, vec![added(1), added(2), added(3)]).await.unwrap();
    store.append("Counter", "c-2", ExpectedVersion::NoStream, vec![added(5)]).await.unwrap();
    store.append("Drifting", "d-1", ExpectedVersion::NoStream, vec![added(1), added(1)]).await.unwrap();
    drop(store);
    (dir, path)
}

/// Runs the command line in-process with `app`; returns the exit outcome and stdout.
async fn admin(app: &App, path: &Path, args: &[&str]) -> (Result<es_cli::Outcome, String>, String) {
    let mut all = vec!["admin", "--db", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let cli = Cli::try_parse_from(all).unwrap();
    let mut out = Vec::new();
    let outcome = es_cli::execute(app, &cli, &mut out).await.map_err(|e| e.to_string());
    (outcome, String::from_utf8(out).unwrap())
}

fn tamper(path: &Path, sql: &str) {
    rusqlite::Connection::open(path).unwrap().execute_batch(sql).unwrap();
}

#[tokio::test]
async fn decoding_a_sound_store_finds_nothing() {
    let (_dir, path) = seeded().await;
    let app = App::new().aggregate::<Counter>();
    let (outcome, out) = admin(&app, &path, &["verify", "--decode"]).await;
    assert_eq!(outcome, Ok(es_cli::Outcome::Clean), "{out}");
}

#[tokio::test]
async fn undecodable_unknown_and_too_new_events_are_named_with_their_stream_and_version() {
    let (_dir, path) = seeded().await;
    tamper(
        &path,
        "UPDATE es_events SET payload = '{\"by\":\"two\"}' WHERE stream_id = 'c-1' AND stream_version = 2;
         UPDATE es_events SET event_type = 'Subtracted' WHERE stream_id = 'c-2' AND stream_version = 1;",
    );
    let store = SqliteStore::open(&path).await.unwrap();
    let reset = NewEvent::encode(&CounterEvent::Reset, RandomIds.next_id(), Timestamp::EPOCH, Metadata::default());
    let mut reset = reset.unwrap();
    reset.schema_version = 7;
    store.append("Counter", "c-3", ExpectedVersion::NoStream, vec![reset]).await.unwrap();
    drop(store);
    let app = App::new().aggregate::<Counter>();
    let (outcome, out) = admin(&app, &path, &["verify", "--decode"]).await;
    assert_eq!(outcome, Ok(es_cli::Outcome::Problems), "{out}");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("decode_failed")).collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].contains("stream Counter/c-1 version 2 (position 2)"), "{out}");
    assert!(lines[1].contains("stream Counter/c-2 version 1") && lines[1].contains("Subtracted"), "{out}");
    assert!(lines[2].contains("stream Counter/c-3 version 1") && lines[2].contains('7'), "{out}");
    // Without --decode, the same rows are sound JSON in continuous streams.
    let (outcome, out) = admin(&app, &path, &["verify"]).await;
    assert_eq!(outcome, Ok(es_cli::Outcome::Clean), "{out}");
}

#[tokio::test]
async fn determinism_folds_twice_and_catches_an_impure_fold() {
    let (_dir, path) = seeded().await;
    let app = App::new().aggregate::<Counter>().aggregate::<Drifting>();
    let (outcome, out) = admin(&app, &path, &["verify", "--decode"]).await;
    assert_eq!(outcome, Ok(es_cli::Outcome::Clean), "one fold cannot tell: {out}");
    let (outcome, out) = admin(&app, &path, &["verify", "--determinism", "--json"]).await;
    assert_eq!(outcome, Ok(es_cli::Outcome::Problems), "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["problems_found"], 1, "{out}");
    assert_eq!(report["problems"][0]["kind"], "nondeterministic_replay");
    assert_eq!(report["problems"][0]["stream_id"], "d-1");
}

#[tokio::test]
async fn replay_prints_the_state_after_each_event() {
    let (_dir, path) = seeded().await;
    let app = App::new().aggregate::<Counter>();
    let (outcome, out) = admin(&app, &path, &["replay", "c-1"]).await;
    assert_eq!(outcome, Ok(es_cli::Outcome::Clean), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[3].starts_with("3        Added       Counter { total: 6 }"), "{out}");
    let (outcome, _) = admin(&app, &path, &["replay", "d-1"]).await;
    assert!(outcome.unwrap_err().contains("no aggregate of stream type Drifting is registered"));
}

#[tokio::test]
async fn the_plain_binary_points_to_the_library_for_decoding() {
    let (_dir, path) = seeded().await;
    let run = support::es(&["verify", "--decode", "--db", path.to_str().unwrap()]).expect_code(2);
    assert!(run.stderr.contains("es_cli::App::new().aggregate"), "{}", run.stderr);
    support::es(&["replay", "c-1", "--db", path.to_str().unwrap()]).expect_code(2);
}
