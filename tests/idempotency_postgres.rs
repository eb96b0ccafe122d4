//! Retries of one command under one idempotency key from separate processes on one
//! PostgreSQL database (feature `postgres`; needs the server): one appends, the
//! others get its outcome; a process started after they all exited gets it too.

mod pg;
mod support;

use es::EventStore;
use support::once;
use support::process::child_role;

const CHILD: &str = "ES_ONCE_POSTGRES_CHILD";
const TEST: &str = "retries_in_separate_processes_append_once";

#[test]
fn retries_in_separate_processes_append_once() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    if let Some(role) = child_role(CHILD) {
        return runtime.block_on(once::run_child(&role, async |prefix| pg::store_with_prefix(prefix).await));
    }
    let prefix = pg::unique_prefix();
    let store = runtime.block_on(async {
        let repository = es::Repository::new(pg::store_with_prefix(&prefix).await);
        repository.execute(once::STREAM, |a: &support::Account, ctx| a.open("Ada", ctx)).await.unwrap();
        repository.store().clone()
    });
    let outcomes: Vec<_> = once::spawn(TEST, CHILD, &prefix, 4).into_iter().map(once::outcome).collect();
    runtime.block_on(once::check(&outcomes, &store, 1));
    // A process started later (a restart) finds the key and gets the same outcome.
    let later = once::spawn(TEST, CHILD, &prefix, 1).into_iter().map(once::outcome).next().unwrap();
    assert_eq!(later, (true, 2, outcomes[0].2.clone()));
    runtime.block_on(async {
        assert_eq!(store.read_stream("Account", once::STREAM, 1).await.unwrap().len(), 2);
        pg::drop_tables(&store).await;
    });
}
