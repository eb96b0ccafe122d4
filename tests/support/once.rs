//! Retries of one command under one idempotency key, raced by real processes: each
//! child runs the same command once, at the same instant, and reports what it got.

use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use es::{EventStore, Repository};

use super::Account;
use super::process::rerun_as_child;

/// The stream and key every child uses.
pub const STREAM: &str = "acc-once";
pub const KEY: &str = "request-42";
/// What each child deposits, under the key.
pub const AMOUNT: u64 = 10;

fn now_micros() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros()).unwrap()
}

/// Starts `children` copies of `test` with `var` naming the database; they run the
/// command at the same instant, a moment from now.
pub fn spawn(test: &str, var: &str, database: &str, children: usize) -> Vec<Child> {
    let start_at = now_micros() + 1_500_000;
    (0..children)
        .map(|_| {
            rerun_as_child(test, var, format!("{start_at} {database}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect()
}

/// The child's side: waits for the common instant, runs the command once and prints
/// `outcome <repeated> <version> <event id>`. `role` is what [`spawn`] passed.
pub async fn run_child<S: EventStore>(role: &str, open: impl AsyncFnOnce(&str) -> S) {
    let (start_at, database) = role.split_once(' ').expect("start instant and database");
    let store = open(database).await;
    let start_at: u64 = start_at.parse().unwrap();
    tokio::time::sleep(Duration::from_micros(start_at.saturating_sub(now_micros()))).await;
    let repository = Repository::new(store);
    let committed = repository.execute_once(STREAM, KEY, |account: &Account, _| account.deposit(AMOUNT)).await.unwrap();
    println!("\noutcome {} {} {}", committed.repeated, committed.version, committed.events[0].event_id());
}

/// One child's report: whether it was a repeat, the version and the event id.
pub fn outcome(child: Child) -> (bool, u64, String) {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "a child failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let line = stdout.lines().find_map(|line| line.split("outcome ").nth(1)).unwrap_or_else(|| {
        panic!("the child reports no outcome: {stdout}\n{}", String::from_utf8_lossy(&output.stderr))
    });
    let mut fields = line.split(' ');
    let repeated = fields.next().unwrap().parse().unwrap();
    let version = fields.next().unwrap().parse().unwrap();
    (repeated, version, fields.next().unwrap().to_owned())
}

/// Checks the race: exactly one child appended, every child got its outcome, and the
/// stream holds the deposit once. `opened` is the stream's version before the race.
pub async fn check(outcomes: &[(bool, u64, String)], store: &impl EventStore, opened: u64) {
    assert_eq!(outcomes.iter().filter(|(repeated, ..)| !repeated).count(), 1, "{outcomes:?}");
    for (_, version, event_id) in outcomes {
        assert_eq!((*version, event_id), (opened + 1, &outcomes[0].2), "{outcomes:?}");
    }
    let loaded = store.load::<Account>(STREAM).await.unwrap();
    assert_eq!((loaded.state().balance, loaded.version()), (AMOUNT, opened + 1), "appended more than once");
}
