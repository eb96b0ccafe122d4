//! Separate processes append to one hot stream of one SQLite file: every version has
//! exactly one winner, versions stay contiguous and no update is lost.

mod support;

use std::process::Stdio;

use es::sqlite::SqliteStore;
use es::{EventStore, ExpectedVersion, IdSource, Metadata, NewEvent, RandomIds, StoreError, Timestamp};
use support::process::{child_role, rerun_as_child};
use support::{Account, AccountEvent};

const CHILD_ENV: &str = "ES_WRITER_CHILD_DB";
const WRITERS: usize = 4;
const DEPOSITS_EACH: u64 = 25;

/// The child's workload: `DEPOSITS_EACH` deposits of 1 on the hot stream, each
/// decided on a fresh read and retried on conflict.
fn writer_workload(db: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let store = SqliteStore::open(db).await.unwrap();
        let mut conflicts = 0;
        for _ in 0..DEPOSITS_EACH {
            loop {
                let stored = store.read_stream("Account", "hot", 1).await.unwrap();
                let version = es::rehydrate::<Account>("hot", stored).unwrap().version();
                let expected = if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) };
                let event = NewEvent::encode(
                    &AccountEvent::Deposited { amount: 1 },
                    RandomIds.next_id(),
                    Timestamp::EPOCH,
                    Metadata::default(),
                )
                .unwrap();
                match store.append("Account", "hot", expected, vec![event]).await {
                    Ok(_) => break,
                    Err(StoreError::Conflict { .. }) => conflicts += 1,
                    Err(other) => panic!("unexpected error: {other}"),
                }
            }
        }
        println!("\nconflicts {conflicts}");
    });
}

#[test]
fn writers_in_separate_processes_lose_no_update() {
    if let Some(db) = child_role(CHILD_ENV) {
        return writer_workload(&db);
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hot.db");
    // Create the schema once, so that the children race on appends only.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    drop(runtime.block_on(SqliteStore::open(&db)).unwrap());
    let children: Vec<_> = (0..WRITERS)
        .map(|_| {
            rerun_as_child("writers_in_separate_processes_lose_no_update", CHILD_ENV, &db)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut conflicts = 0u64;
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "a writer failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        conflicts += stdout
            .lines()
            .find_map(|line| line.split("conflicts ").nth(1))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .expect("the writer reports its conflicts");
    }
    runtime.block_on(async {
        let store = SqliteStore::open(&db).await.unwrap();
        let stored = store.read_stream("Account", "hot", 1).await.unwrap();
        let account = es::rehydrate::<Account>("hot", stored).unwrap();
        let total = WRITERS as u64 * DEPOSITS_EACH;
        assert_eq!((account.version(), account.state().balance), (total, total));
        println!("{WRITERS} processes, {total} appends, {conflicts} conflicts retried");
    });
}
