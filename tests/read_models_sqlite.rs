//! The read-model suite against the SQLite store, and what only SQLite can show: the
//! views' table honours the table prefix, a stored document that no longer decodes is
//! named, and killing a process that updates views neither loses nor repeats an event.

mod read_models;
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use es::projection::{ViewError, ViewStore};
use es::sqlite::{ProjectionRunner, SqliteOptions, SqliteStore};
use es::{EventStore, ExpectedVersion};
use read_models::{AccountEvent, AccountSummary, deposit, encode, opened};
use support::process::{child_role, rerun_as_child};

async fn new_store() -> SqliteStore {
    // Each store gets its own directory, kept for the life of the test process.
    let dir = tempfile::tempdir().unwrap().keep();
    SqliteStore::open(dir.join("events.db")).await.unwrap()
}

async fn clean_up(_: &SqliteStore) {}

read_model_suite!(es::sqlite::ProjectionRunner);

#[tokio::test]
async fn views_live_in_one_table_with_the_stores_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteOptions::new(dir.path().join("events.db")).table_prefix("bank_").open().await.unwrap();
    store.append("Account", "a-1", ExpectedVersion::NoStream, encode(&[opened("Ada"), deposit(4)])).await.unwrap();
    store.views::<AccountSummary>("summaries").catch_up().await.unwrap();
    let rows: Vec<(String, String)> = store
        .read(|c| {
            c.prepare("SELECT view, key FROM bank_views")?.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
        .await
        .unwrap();
    assert_eq!(rows, vec![("summaries".to_owned(), "a-1".to_owned())]);
    let checkpoint: String =
        store.read(|c| c.query_row("SELECT projection FROM bank_checkpoints", [], |r| r.get(0))).await.unwrap();
    assert_eq!(checkpoint, "view:summaries");
    // Another store on the same file (another process, say) reads the same view.
    let elsewhere = SqliteOptions::new(dir.path().join("events.db")).table_prefix("bank_").open().await.unwrap();
    let summary = elsewhere.views::<AccountSummary>("summaries").load("a-1").await.unwrap().unwrap();
    assert_eq!((summary.owner.as_str(), summary.balance), ("Ada", 4));
}

#[tokio::test]
async fn a_stored_document_that_no_longer_decodes_is_named_by_view_and_key() {
    let store = new_store().await;
    store.append("Account", "a-1", ExpectedVersion::NoStream, encode(&[opened("Ada")])).await.unwrap();
    let summaries = store.views::<AccountSummary>("summaries");
    summaries.catch_up().await.unwrap();
    store
        .transaction(|tx| {
            tx.execute("UPDATE es_views SET document = '{\"owner\": 7}' WHERE key = 'a-1'", [])?;
            Ok::<_, es::StoreError>(())
        })
        .await
        .unwrap();
    let error = summaries.load("a-1").await.unwrap_err();
    assert!(matches!(&error, ViewError::Decode { view, key, .. } if view == "summaries" && key == "a-1"), "{error:?}");
    assert!(
        error.to_string().starts_with(
            "view summaries, key a-1: the stored document does not decode (after changing the view's type, rebuild the views)"
        ),
        "{error}"
    );

    // The next event for that key stops the view with the same diagnosis.
    store.append("Account", "a-1", ExpectedVersion::Exact(1), encode(&[deposit(1)])).await.unwrap();
    let error = summaries.catch_up().await.unwrap_err();
    assert!(error.to_string().contains("view summaries, key a-1: the stored document does not decode"), "{error}");
}

const CHILD_ENV: &str = "ES_VIEWS_CRASH_CHILD_DB";
const ACCOUNTS: u64 = 4;

/// The child's workload: append deposits and fold them into views in small batches,
/// until killed.
fn child_workload(dir: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let store = SqliteStore::open(dir.join("events.db")).await.unwrap();
        let projection = store.views::<AccountSummary>("summaries").projection();
        let runner =
            ProjectionRunner::new(store.clone(), projection).batch_size(3).poll_interval(Duration::from_millis(5));
        tokio::spawn(runner.run(std::future::pending()));
        let mut n: u64 = std::process::id().into();
        loop {
            n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            // 20..=99: never the 13 the view refuses.
            let amount = (n >> 40) % 80 + 20;
            let account = format!("acc-{}", (n >> 33) % ACCOUNTS);
            store.append("Account", &account, ExpectedVersion::Any, encode(&[deposit(amount)])).await.unwrap();
        }
    });
}

/// The summaries the events up to `through` (a position) must give.
fn expected_summaries(events: &[es::StoredEvent], through: u64) -> HashMap<String, (u64, u64)> {
    let mut expected: HashMap<String, (u64, u64)> = HashMap::new();
    for event in events.iter().filter(|e| e.cursor.position <= through) {
        let recorded = event.decode_ref::<AccountEvent>().unwrap();
        let AccountEvent::Deposited { amount, .. } = recorded.event() else { continue };
        let entry = expected.entry(event.stream_id.clone()).or_default();
        entry.0 += amount;
        entry.1 = event.stream_version;
    }
    expected
}

async fn assert_views_match(store: &SqliteStore, events: &[es::StoredEvent], through: u64) {
    let summaries = store.views::<AccountSummary>("summaries");
    for account in (0..ACCOUNTS).map(|i| format!("acc-{i}")) {
        let expected = expected_summaries(events, through).get(&account).copied();
        let found = summaries.load(&account).await.unwrap().map(|s| (s.balance, s.version));
        assert_eq!(found, expected, "{account} through position {through}");
    }
}

#[test]
fn killing_a_process_that_updates_views_loses_and_repeats_no_event() {
    const TEST: &str = "killing_a_process_that_updates_views_loses_and_repeats_no_event";
    if let Some(dir) = child_role(CHILD_ENV) {
        return child_workload(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut seed = support::process::seed(TEST);
    let kills = 8;
    for round in 0..kills {
        let mut child =
            rerun_as_child(TEST, CHILD_ENV, dir.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        std::thread::sleep(Duration::from_millis(80 + (seed >> 33) % 300));
        assert!(child.try_wait().unwrap().is_none(), "the child died by itself in round {round}");
        child.kill().unwrap(); // SIGKILL: no destructor, no flush, no goodbye.
        child.wait().unwrap();
    }

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let store = SqliteStore::open(dir.path().join("events.db")).await.unwrap();
        let events = store.read_all(es::Cursor::START, usize::MAX).await.unwrap();
        let summaries = store.views::<AccountSummary>("summaries");
        let mut runner = ProjectionRunner::new(store.clone(), summaries.projection());
        let checkpoint = runner.checkpoint().await.unwrap().map_or(0, |c| c.cursor.position);
        assert!(checkpoint > 0 && events.len() > kills, "the children did too little to prove anything");
        // The views hold exactly the events up to the checkpoint that committed with them.
        assert_views_match(&store, &events, checkpoint).await;

        // Finishing the work gives the fold of every event, each once.
        runner.catch_up().await.unwrap();
        let last = events.last().unwrap().cursor.position;
        assert_views_match(&store, &events, last).await;
        eprintln!("{} events, checkpoint at {checkpoint} after {kills} kills", events.len());
    });
}
