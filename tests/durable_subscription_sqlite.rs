//! A durable subscription's consumer killed mid-stream (SIGKILL) resumes, in a new
//! process, strictly after its last acknowledged event, and nothing is lost.

mod support;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use es::sqlite::SqliteStore;
use es::{EventStore, ExpectedVersion, IdSource, Metadata, NewEvent, RandomIds, Timestamp};
use futures_util::StreamExt;
use support::AccountEvent;
use support::process::{child_role, rerun_as_child};

const CONSUMER: &str = "ES_DURABLE_SQLITE_CONSUMER";
const TEST: &str = "a_killed_consumer_resumes_after_its_last_acknowledgement";
const EVENTS: u64 = 60;

/// The child: handles events slowly, writing `handled <v>` before and `acked <v>`
/// after each acknowledgement, until the stream has nothing more for a while.
async fn consume(role: &str) {
    let (db, log) = role.split_once(' ').unwrap();
    let store = SqliteStore::open(db).await.unwrap();
    let mut log = std::fs::OpenOptions::new().append(true).create(true).open(log).unwrap();
    let owner = format!("consumer-{}", std::process::id());
    let mut events = es::subscription::durable(&store, "mailer", &owner)
        .lease(Duration::from_millis(500))
        .poll_interval(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(500), events.next()).await {
        let event = event.unwrap();
        writeln!(log, "handled {}", event.stream_version).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        events.ack(event.cursor).await.unwrap();
        writeln!(log, "acked {}", event.stream_version).unwrap();
    }
}

#[test]
fn a_killed_consumer_resumes_after_its_last_acknowledgement() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    if let Some(role) = child_role(CONSUMER) {
        return runtime.block_on(consume(&role));
    }
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("events.db"), dir.path().join("consumed.log"));
    runtime.block_on(async {
        let store = SqliteStore::open(&db).await.unwrap();
        let events = (1..=EVENTS)
            .map(|amount| {
                NewEvent::encode(
                    &AccountEvent::Deposited { amount },
                    RandomIds.next_id(),
                    Timestamp::EPOCH,
                    Metadata::default(),
                )
                .unwrap()
            })
            .collect();
        store.append("Account", "acc", ExpectedVersion::NoStream, events).await.unwrap();
    });
    let role = format!("{} {}", db.display(), log.display());
    let lines = || std::fs::read_to_string(&log).unwrap_or_default().lines().map(str::to_owned).collect::<Vec<_>>();
    let mut first = rerun_as_child(TEST, CONSUMER, &role).stdout(Stdio::null()).spawn().unwrap();
    while lines().iter().filter(|line| line.starts_with("acked")).count() < 15 {
        std::thread::sleep(Duration::from_millis(5));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let before = lines();
    let last_acked: u64 = before.iter().rev().find_map(|line| line.strip_prefix("acked ")).unwrap().parse().unwrap();

    let second = rerun_as_child(TEST, CONSUMER, &role).stdout(Stdio::null()).spawn().unwrap();
    assert!(second.wait_with_output().unwrap().status.success());
    let after: Vec<u64> = lines()[before.len()..]
        .iter()
        .filter_map(|line| line.strip_prefix("handled "))
        .map(|v| v.parse().unwrap())
        .collect();
    let expected: Vec<u64> = (last_acked + 1..=EVENTS).collect();
    assert_eq!(after, expected, "the new consumer did not resume strictly after {last_acked}, or skipped");
}
