//! Retries of one command under one idempotency key from separate processes on one
//! SQLite file: one appends, the others get its outcome; a process started after they
//! all exited gets it too.

mod support;

use es::sqlite::SqliteStore;
use es::{EventStore, Repository};
use support::Account;
use support::once;
use support::process::child_role;

const CHILD: &str = "ES_ONCE_SQLITE_CHILD";
const TEST: &str = "retries_in_separate_processes_append_once";

#[test]
fn retries_in_separate_processes_append_once() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    if let Some(role) = child_role(CHILD) {
        return runtime.block_on(once::run_child(&role, async |path| SqliteStore::open(path).await.unwrap()));
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("once.db");
    let db = db.to_str().unwrap();
    runtime.block_on(async {
        let repository = Repository::new(SqliteStore::open(db).await.unwrap());
        repository.execute(once::STREAM, |a: &Account, ctx| a.open("Ada", ctx)).await.unwrap();
    });
    let outcomes: Vec<_> = once::spawn(TEST, CHILD, db, 4).into_iter().map(once::outcome).collect();
    runtime.block_on(async {
        let store = SqliteStore::open(db).await.unwrap();
        once::check(&outcomes, &store, 1).await;
    });
    // A process started later (a restart) finds the key and gets the same outcome.
    let later = once::spawn(TEST, CHILD, db, 1).into_iter().map(once::outcome).next().unwrap();
    assert_eq!(later, (true, 2, outcomes[0].2.clone()));
    runtime.block_on(async {
        let store = SqliteStore::open(db).await.unwrap();
        assert_eq!(store.read_stream("Account", once::STREAM, 1).await.unwrap().len(), 2);
    });
}
