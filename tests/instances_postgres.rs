//! Several service instances, each a separate process, on one PostgreSQL database.
//!
//! - **Writers.** N processes append to one hot stream (load, decide, append with the
//!   loaded version, retry on conflict): exactly one winner per version, contiguous
//!   versions, no lost update.
//! - **Relays and projection runners.** Three relay processes and three projection
//!   runner processes run while events are appended. Each relay writes what it
//!   delivers to a file of its own, with the delivery's start and end instants on the
//!   machine's clock. The test proves that no event is ever in flight in two relays at
//!   once, that per-stream order holds at the sink, that every event is delivered, and
//!   that the read model equals the fold of the events with every event applied exactly
//!   once (its rows are keyed by event id and the balances check each version). One
//!   projection runner is SIGKILLed while events flow; then the relay holding the
//!   outbox lease is SIGKILLed and the time another relay takes to deliver new events
//!   is measured and bounded.
//!
//! The children are this test binary running the same test again, with environment
//! variables naming their role. Each exits by itself at a deadline, so
//! nothing outlives a parent that died; a parent that fails kills its children.

mod pg;
mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use es::postgres::{PgOptions, PgStore, Projection, ProjectionRunner};
use es::projection::HandlerError;
use es::relay::Outbox;
use es::{
    Aggregate, EventStore, ExpectedVersion, IdSource, Metadata, NewEvent, RandomIds, Relay, RelayOptions, Sink,
    SinkError, StoreError, StoredEvent, Timestamp,
};
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, PgConnection};
use support::process::{child_role, rerun_as_child};
use support::{Account, AccountEvent};
use uuid::Uuid;

const ROLE: &str = "ES_PG_INSTANCE_ROLE";
const PREFIX: &str = "ES_PG_INSTANCE_PREFIX";
const NAME: &str = "ES_PG_INSTANCE_NAME";
const OUTPUT: &str = "ES_PG_INSTANCE_OUTPUT";
const STOP: &str = "ES_PG_INSTANCE_STOP";
const START_AT: &str = "ES_PG_INSTANCE_START_AT";
const DEADLINE: &str = "ES_PG_INSTANCE_DEADLINE";

const WRITERS: usize = 4;
const DEPOSITS_EACH: u64 = 30;
const HOT: &str = "hot";

const RELAYS: usize = 3;
const RUNNERS: usize = 3;
const ACCOUNTS: usize = 8;
const APPENDS_PER_ACCOUNT: u64 = 30;
const LEASE: Duration = Duration::from_millis(500);
const POLL: Duration = Duration::from_millis(50);
/// What the takeover may take beyond the lease and one poll interval: a delivery, a
/// busy two-core machine.
const TAKEOVER_SLACK: Duration = Duration::from_millis(1_500);

/// Microseconds since the Unix epoch: the clock every process shares.
fn now_micros() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros()).unwrap()
}

fn deposit(amount: u64) -> NewEvent {
    let now = Timestamp::from_system_time(SystemTime::now());
    NewEvent::encode(&AccountEvent::Deposited { amount }, RandomIds.next_id(), now, Metadata::default()).unwrap()
}

fn opened(owner: &str) -> NewEvent {
    let event = AccountEvent::Opened { owner: owner.into(), at: Timestamp::EPOCH };
    NewEvent::encode(&event, RandomIds.next_id(), Timestamp::EPOCH, Metadata::default()).unwrap()
}

fn expected(version: u64) -> ExpectedVersion {
    if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) }
}

// ---------------------------------------------------------------------------------
// The children.

/// The work of a child process, by its role.
fn child_workload(role: &str) {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let deadline: i64 = var(DEADLINE).parse().unwrap();
    let prefix = var(PREFIX);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let store = PgOptions::with_pool(pg::pool(3).await).table_prefix(&prefix).open().await.unwrap();
        match role {
            "writer" => writer(&store, var(START_AT).parse().unwrap(), deadline).await,
            "relay" => relay(store, var(NAME), &var(OUTPUT), PathBuf::from(var(STOP)), deadline).await,
            "runner" => runner(store, prefix, var(NAME), PathBuf::from(var(STOP)), deadline).await,
            other => panic!("unknown role {other}"),
        }
    });
}

/// Deposits 1, `DEPOSITS_EACH` times, on the hot stream: each decided on a fresh load
/// and appended with the loaded version, retried on conflict.
async fn writer(store: &PgStore, start_at: i64, deadline: i64) {
    // Start together, so that the writers really race.
    let wait = u64::try_from(start_at - now_micros()).unwrap_or(0);
    tokio::time::sleep(Duration::from_micros(wait)).await;
    let mut conflicts = 0u64;
    for _ in 0..DEPOSITS_EACH {
        loop {
            assert!(now_micros() < deadline, "the writer ran past its deadline");
            let stored = store.read_stream(Account::stream_type(), HOT, 1).await.unwrap();
            let loaded = es::rehydrate::<Account>(HOT, stored).unwrap();
            let decided = loaded.state().deposit(1).unwrap();
            let events = decided
                .iter()
                .map(|event| {
                    NewEvent::encode(event, RandomIds.next_id(), Timestamp::EPOCH, Metadata::default()).unwrap()
                })
                .collect();
            match store.append(Account::stream_type(), HOT, expected(loaded.version()), events).await {
                Ok(_) => break,
                Err(StoreError::Conflict { .. }) => conflicts += 1,
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
    }
    println!("\nconflicts {conflicts}");
}

/// A line of a relay's file: one event delivered, and when.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Delivery {
    event_id: Uuid,
    stream_id: String,
    version: u64,
    /// When the delivery call began and ended, in microseconds since the epoch.
    start: i64,
    end: i64,
    owner: String,
}

/// Writes each delivered event as a line of its own file, with the delivery's
/// interval. A delivery takes a little while, as a broker round trip would.
struct IntervalSink {
    owner: String,
    file: Mutex<std::fs::File>,
}

impl Sink for IntervalSink {
    async fn deliver(&self, events: &[StoredEvent], _lease: es::LeaseGeneration) -> Result<(), SinkError> {
        let start = now_micros();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let end = now_micros();
        let mut lines = String::new();
        for event in events {
            let delivery = Delivery {
                event_id: event.event_id,
                stream_id: event.stream_id.clone(),
                version: event.stream_version,
                start,
                end,
                owner: self.owner.clone(),
            };
            lines.push_str(&serde_json::to_string(&delivery).map_err(|e| SinkError::permanent(e.to_string()))?);
            lines.push('\n');
        }
        // One write per batch, to a file opened for appending: a SIGKILL leaves whole
        // lines (at most the last one torn), and the page cache keeps them.
        let mut file = self.file.lock().unwrap();
        file.write_all(lines.as_bytes()).map_err(|e| SinkError::transient(e.to_string()))
    }
}

/// Resolves when the parent asks to stop (the stop file exists) or at the deadline.
async fn stopped(stop: PathBuf, deadline: i64) {
    while !stop.exists() && now_micros() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn relay(store: PgStore, owner: String, output: &str, stop: PathBuf, deadline: i64) {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(output).unwrap();
    let sink = IntervalSink { owner: owner.clone(), file: Mutex::new(file) };
    let options = RelayOptions {
        batch_size: 20,
        poll_interval: POLL,
        lease: LEASE,
        delivery_timeout: Duration::from_millis(200),
        owner,
        ..RelayOptions::default()
    };
    let report = Relay::new(store, sink, options).run(stopped(stop.clone(), deadline)).await;
    assert!(stop.exists(), "the relay ran into its deadline");
    println!("\ndelivered {}", report.delivered);
}

async fn runner(store: PgStore, prefix: String, name: String, stop: PathBuf, deadline: i64) {
    let ledger = Ledger { prefix, runner: name };
    let report = ProjectionRunner::new(store, ledger)
        .batch_size(16)
        .poll_interval(POLL)
        .run(stopped(stop.clone(), deadline))
        .await
        .unwrap();
    assert!(stop.exists(), "the runner ran into its deadline");
    println!("\napplied {}", report.applied);
}

/// The read model: one row per applied event (keyed by event id, so a second
/// application fails) and one balance per account, which moves only from version
/// n - 1 to version n (so a skipped or repeated event is refused).
struct Ledger {
    prefix: String,
    runner: String,
}

impl Ledger {
    fn create_tables(prefix: &str) -> String {
        format!(
            "CREATE TABLE {prefix}applied (event_id UUID PRIMARY KEY, stream_id TEXT NOT NULL, version BIGINT NOT NULL, runner TEXT NOT NULL);
             CREATE TABLE {prefix}balances (account TEXT PRIMARY KEY, balance BIGINT NOT NULL, version BIGINT NOT NULL);"
        )
    }
}

impl Projection for Ledger {
    fn name(&self) -> &'static str {
        "ledger"
    }

    async fn handle(&mut self, tx: &mut PgConnection, event: &StoredEvent) -> Result<(), HandlerError> {
        let prefix = &self.prefix;
        let recorded = event.decode_ref::<AccountEvent>()?;
        let amount = match recorded.event() {
            AccountEvent::Deposited { amount } => i64::try_from(*amount)?,
            AccountEvent::Withdrawn { amount } => -i64::try_from(*amount)?,
            _ => 0,
        };
        let version = i64::try_from(event.stream_version)?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {prefix}applied (event_id, stream_id, version, runner) VALUES ($1, $2, $3, $4)"
        )))
        .bind(event.event_id)
        .bind(&event.stream_id)
        .bind(version)
        .bind(&self.runner)
        .execute(&mut *tx)
        .await?;
        let moved = if version == 1 {
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {prefix}balances (account, balance, version) VALUES ($1, $2, 1)"
            )))
            .bind(&event.stream_id)
            .bind(amount)
            .execute(&mut *tx)
            .await?
        } else {
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE {prefix}balances SET balance = balance + $2, version = $3 WHERE account = $1 AND version = $3 - 1"
            )))
            .bind(&event.stream_id)
            .bind(amount)
            .bind(version)
            .execute(&mut *tx)
            .await?
        };
        if moved.rows_affected() != 1 {
            let sql = format!("SELECT version FROM {prefix}balances WHERE account = $1");
            let at: Option<i64> =
                sqlx::query_scalar(AssertSqlSafe(sql)).bind(&event.stream_id).fetch_optional(tx).await?;
            return Err(HandlerError::new(format!(
                "{} version {version} does not follow the balance at version {at:?} ({})",
                event.stream_id, self.runner
            )));
        }
        Ok(())
    }

    async fn reset(&mut self, tx: &mut PgConnection) -> Result<(), HandlerError> {
        let prefix = &self.prefix;
        sqlx::raw_sql(AssertSqlSafe(format!("DELETE FROM {prefix}applied; DELETE FROM {prefix}balances;")))
            .execute(tx)
            .await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// The parent's side.

/// The children of a test, killed when the test ends early (a failed assertion).
struct Instances {
    /// The test whose children these are: they run it again in their own role.
    test: &'static str,
    children: Vec<(String, Option<Child>)>,
}

impl Instances {
    fn new(test: &'static str) -> Self {
        Self { test, children: Vec::new() }
    }

    fn spawn(&mut self, role: &str, name: &str, env: &[(&str, String)]) {
        let child = rerun_as_child(self.test, ROLE, role)
            .env(NAME, name)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.children.push((name.to_owned(), Some(child)));
    }

    /// Fails, with its output, if a child exited while it should be running.
    fn check_running(&mut self) {
        for (name, slot) in &mut self.children {
            let Some(child) = slot.as_mut() else { continue };
            if let Some(status) = child.try_wait().unwrap() {
                let (stdout, stderr) = output(slot.take().unwrap());
                panic!("{name} exited early ({status}):\n{stdout}\n{stderr}");
            }
        }
    }

    /// SIGKILLs the named child and reaps it.
    fn kill(&mut self, name: &str) {
        let (_, slot) = self.children.iter_mut().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no child {name}"));
        let mut child = slot.take().unwrap_or_else(|| panic!("{name} is gone already"));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Waits for every child still running to exit successfully within `limit`;
    /// returns each one's standard output.
    fn finish(&mut self, limit: Duration) -> Vec<(String, String)> {
        let until = std::time::Instant::now() + limit;
        let mut outputs = Vec::new();
        for (name, slot) in &mut self.children {
            let Some(child) = slot.as_mut() else { continue };
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                assert!(std::time::Instant::now() < until, "{name} did not exit in time");
                std::thread::sleep(Duration::from_millis(20));
            };
            let (stdout, stderr) = output(slot.take().unwrap());
            assert!(status.success(), "{name} failed ({status}):\n{stdout}\n{stderr}");
            outputs.push((name.clone(), stdout));
        }
        outputs
    }
}

/// The standard output and error of a child that has exited.
fn output(child: Child) -> (String, String) {
    let output = child.wait_with_output().unwrap();
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

impl Drop for Instances {
    fn drop(&mut self) {
        for (_, slot) in &mut self.children {
            if let Some(mut child) = slot.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn reported(stdout: &str, key: &str) -> u64 {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` in the child's output:\n{stdout}"))
}

#[test]
fn writers_in_separate_processes_lose_no_update() {
    if let Some(role) = child_role(ROLE) {
        return child_workload(&role);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let store = runtime.block_on(pg::fresh_store());
    let prefix = store.table("");
    runtime
        .block_on(store.append(Account::stream_type(), HOT, ExpectedVersion::NoStream, vec![opened("hot")]))
        .unwrap();
    let start_at = now_micros() + 1_500_000;
    let deadline = now_micros() + 30_000_000;
    let mut writers = Instances::new("writers_in_separate_processes_lose_no_update");
    for i in 0..WRITERS {
        writers.spawn(
            "writer",
            &format!("writer-{i}"),
            &[(PREFIX, prefix.clone()), (START_AT, start_at.to_string()), (DEADLINE, deadline.to_string())],
        );
    }
    let conflicts: u64 =
        writers.finish(Duration::from_secs(40)).iter().map(|(_, stdout)| reported(stdout, "conflicts ")).sum();
    runtime.block_on(async {
        let stored = store.read_stream(Account::stream_type(), HOT, 1).await.unwrap();
        let deposits = WRITERS as u64 * DEPOSITS_EACH;
        let versions: Vec<u64> = stored.iter().map(|event| event.stream_version).collect();
        assert_eq!(versions, (1..=deposits + 1).collect::<Vec<_>>(), "one winner per version, no gap");
        let account = es::rehydrate::<Account>(HOT, stored).unwrap();
        assert_eq!(account.state().balance, deposits, "no lost update");
        assert!(conflicts > 0, "the writers never raced");
        println!("{WRITERS} processes, {deposits} deposits on one stream, {conflicts} conflicts retried");
        pg::drop_tables(&store).await;
    });
}

/// Every delivery line in the relays' files; lines a kill tore are skipped.
fn deliveries(files: &[PathBuf]) -> Vec<(usize, usize, Delivery)> {
    let mut all = Vec::new();
    for (relay, path) in files.iter().enumerate() {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for (line, text) in text.lines().enumerate() {
            if let Ok(delivery) = serde_json::from_str::<Delivery>(text) {
                all.push((relay, line, delivery));
            }
        }
    }
    all
}

/// Appends `rounds` commands to each of `accounts`, from one task per two accounts:
/// 1 to 3 deposits per transaction, some through the caller's own transaction.
async fn append_load(store: &PgStore, accounts: &[String], versions: &mut [u64], rounds: u64) {
    let tasks: Vec<_> = accounts
        .chunks(2)
        .zip(versions.chunks(2))
        .map(|(ids, versions)| {
            let (store, ids, mut versions) = (store.clone(), ids.to_vec(), versions.to_vec());
            tokio::spawn(async move {
                for round in 0..rounds {
                    for (id, version) in ids.iter().zip(&mut versions) {
                        let mut events = Vec::new();
                        if *version == 0 {
                            events.push(opened(id));
                        }
                        events.extend((0..=round % 3).map(|n| deposit(1 + (round * 7 + n) % 13)));
                        let count = events.len() as u64;
                        let stream_type = Account::stream_type();
                        if round % 2 == 0 {
                            store.append(stream_type, id, expected(*version), events).await.unwrap();
                        } else {
                            let mut tx = store.pool().begin().await.unwrap();
                            store.append_in(&mut tx, stream_type, id, expected(*version), events).await.unwrap();
                            tx.commit().await.unwrap();
                        }
                        *version += count;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                versions
            })
        })
        .collect();
    let mut done = Vec::new();
    for task in tasks {
        done.extend(task.await.unwrap());
    }
    versions.copy_from_slice(&done);
}

/// Every event id in the table, in commit order: read directly, since `read_all`
/// holds back events while any older transaction in the cluster runs.
async fn event_ids(store: &PgStore) -> Vec<Uuid> {
    let sql = format!("SELECT event_id FROM {} ORDER BY transaction_id, position", store.table("events"));
    sqlx::query_scalar(AssertSqlSafe(sql)).fetch_all(store.pool()).await.unwrap()
}

async fn applied_count(store: &PgStore) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {}", store.table("applied"));
    sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(store.pool()).await.unwrap()
}

/// Waits until every event in the store was delivered by some relay and applied by
/// the projection.
async fn wait_until_caught_up(store: &PgStore, files: &[PathBuf], instances: &mut Instances, limit: Duration) {
    let until = tokio::time::Instant::now() + limit;
    loop {
        let ids: HashSet<Uuid> = event_ids(store).await.into_iter().collect();
        let delivered: HashSet<Uuid> = deliveries(files).iter().map(|(_, _, d)| d.event_id).collect();
        let applied = applied_count(store).await;
        if ids.is_subset(&delivered) && applied == i64::try_from(ids.len()).unwrap() {
            return;
        }
        instances.check_running();
        assert!(
            tokio::time::Instant::now() < until,
            "not caught up: {} of {} delivered, {applied} applied",
            ids.intersection(&delivered).count(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn lease_owner(store: &PgStore) -> Option<String> {
    let sql = format!("SELECT owner FROM {} WHERE id = 1", store.table("relay_lease"));
    sqlx::query_scalar(AssertSqlSafe(sql)).fetch_optional(store.pool()).await.unwrap()
}

#[test]
#[allow(clippy::too_many_lines, reason = "one scenario, told start to end")]
fn relays_and_projection_runners_in_separate_processes() {
    if let Some(role) = child_role(ROLE) {
        return child_workload(&role);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = runtime.block_on(pg::fresh_store());
    let prefix = store.table("");
    runtime.block_on(sqlx::raw_sql(AssertSqlSafe(Ledger::create_tables(&prefix))).execute(store.pool())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stop = dir.path().join("stop");
    let files: Vec<PathBuf> = (0..RELAYS).map(|i| dir.path().join(format!("relay-{i}.jsonl"))).collect();
    let deadline = now_micros() + 45_000_000;
    let common = [(PREFIX, prefix.clone()), (STOP, stop.display().to_string()), (DEADLINE, deadline.to_string())];
    let mut instances = Instances::new("relays_and_projection_runners_in_separate_processes");
    for (i, file) in files.iter().enumerate() {
        let mut env = common.to_vec();
        env.push((OUTPUT, file.display().to_string()));
        instances.spawn("relay", &format!("relay-{i}"), &env);
    }
    for i in 0..RUNNERS {
        instances.spawn("runner", &format!("runner-{i}"), &common);
    }
    let accounts: Vec<String> = (0..ACCOUNTS).map(|i| format!("acc-{i}")).collect();
    let mut versions = vec![0; ACCOUNTS];

    // Events flow while every instance runs; one projection runner dies halfway.
    runtime.block_on(async {
        let load = append_load(&store, &accounts, &mut versions, APPENDS_PER_ACCOUNT);
        let kill_runner = async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            instances.kill("runner-0");
        };
        tokio::join!(load, kill_runner);
        wait_until_caught_up(&store, &files, &mut instances, Duration::from_secs(20)).await;
    });

    // The relay holding the lease dies; another one must deliver new events.
    let takeover = runtime.block_on(async {
        let holder = lease_owner(&store).await.expect("a relay holds the lease");
        let killed_at = now_micros();
        instances.kill(&holder);
        let mut fresh = HashSet::new();
        for (id, version) in accounts.iter().zip(&mut versions) {
            let event = deposit(5);
            fresh.insert(event.event_id);
            let appended = store.append(Account::stream_type(), id, expected(*version), vec![event]).await.unwrap();
            *version = appended.version;
        }
        let bound = LEASE + POLL + TAKEOVER_SLACK;
        let until = tokio::time::Instant::now() + bound + Duration::from_secs(3);
        let delivered_at = loop {
            let new: Vec<Delivery> = deliveries(&files)
                .into_iter()
                .map(|(_, _, d)| d)
                .filter(|d| fresh.contains(&d.event_id) && d.owner != holder)
                .collect();
            let seen: HashSet<Uuid> = new.iter().map(|d| d.event_id).collect();
            if seen.len() == fresh.len() {
                break new.iter().map(|d| d.end).max().unwrap();
            }
            assert!(tokio::time::Instant::now() < until, "no relay took over from {holder}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let takeover = Duration::from_micros(u64::try_from(delivered_at - killed_at).unwrap());
        let successor = lease_owner(&store).await.expect("a relay holds the lease");
        assert_ne!(successor, holder);
        println!("killed {holder} holding the lease; {successor} delivered the new events after {takeover:?}");
        assert!(takeover <= bound, "takeover took {takeover:?}, more than {bound:?}");
        wait_until_caught_up(&store, &files, &mut instances, Duration::from_secs(10)).await;
        takeover
    });

    std::fs::write(&stop, b"stop").unwrap();
    let outputs = instances.finish(Duration::from_secs(10));
    for (name, stdout) in &outputs {
        let key = if name.starts_with("relay") { "delivered " } else { "applied " };
        println!("{name}: {key}{}", reported(stdout, key));
    }

    runtime.block_on(async {
        let events = event_ids(&store).await;
        let all = deliveries(&files);

        // Never in flight in two relays at once.
        let mut by_event: HashMap<Uuid, Vec<&(usize, usize, Delivery)>> = HashMap::new();
        for delivery in &all {
            by_event.entry(delivery.2.event_id).or_default().push(delivery);
        }
        for (id, copies) in &by_event {
            for (i, a) in copies.iter().enumerate() {
                for b in &copies[i + 1..] {
                    let overlap = a.2.start < b.2.end && b.2.start < a.2.end;
                    assert!(!(a.0 != b.0 && overlap), "event {id} in flight in two relays at once: {a:?} {b:?}");
                }
            }
        }
        let mut intervals: Vec<(i64, i64, usize)> = all.iter().map(|(r, _, d)| (d.start, d.end, *r)).collect();
        intervals.sort_unstable();
        intervals.dedup();
        let concurrent = intervals.windows(2).filter(|w| w[0].2 != w[1].2 && w[1].0 < w[0].1).count();

        // Every event delivered; per stream, first deliveries in version order.
        let ids: HashSet<Uuid> = events.iter().copied().collect();
        let delivered: HashSet<Uuid> = by_event.keys().copied().collect();
        assert_eq!(delivered, ids, "every event delivered, nothing else");
        let mut first: Vec<&(usize, usize, Delivery)> =
            by_event.values().map(|copies| *copies.iter().min_by_key(|(r, l, d)| (d.start, *r, *l)).unwrap()).collect();
        first.sort_by_key(|(r, l, d)| (d.start, *r, *l));
        let mut streams: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for (_, _, delivery) in &first {
            streams.entry(&delivery.stream_id).or_default().push(delivery.version);
        }
        for (id, version) in accounts.iter().zip(&versions) {
            assert_eq!(streams[id.as_str()], (1..=*version).collect::<Vec<_>>(), "{id}: order at the sink");
        }
        let redelivered = all.len() - delivered.len();
        let status = store.status().await.unwrap();
        assert_eq!(status.pending, 0, "the outbox is empty");

        // The read model is the fold of the events; each event applied exactly once.
        let applied_sql = format!("SELECT event_id, runner FROM {prefix}applied");
        let applied: Vec<(Uuid, String)> =
            sqlx::query_as(AssertSqlSafe(applied_sql)).fetch_all(store.pool()).await.unwrap();
        let applied_ids: HashSet<Uuid> = applied.iter().map(|(id, _)| *id).collect();
        assert_eq!(applied.len(), events.len(), "each event applied once");
        assert_eq!(applied_ids, ids, "every event applied");
        for id in &accounts {
            let stored = store.read_stream(Account::stream_type(), id, 1).await.unwrap();
            let folded = es::rehydrate::<Account>(id, stored).unwrap();
            let balance_sql = format!("SELECT balance, version FROM {prefix}balances WHERE account = $1");
            let (balance, version): (i64, i64) =
                sqlx::query_as(AssertSqlSafe(balance_sql)).bind(id).fetch_one(store.pool()).await.unwrap();
            let fold = (i64::try_from(folded.state().balance).unwrap(), i64::try_from(folded.version()).unwrap());
            assert_eq!((balance, version), fold, "{id}: read model == fold of its events");
        }
        let checkpoint_sql = format!("SELECT event_id FROM {prefix}checkpoints WHERE projection = 'ledger'");
        let checkpoint: Option<Uuid> =
            sqlx::query_scalar(AssertSqlSafe(checkpoint_sql)).fetch_one(store.pool()).await.unwrap();
        assert_eq!(checkpoint, events.last().copied(), "the checkpoint names the last event");

        let mut by_runner: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, runner) in &applied {
            *by_runner.entry(runner).or_default() += 1;
        }
        println!(
            "{} events over {ACCOUNTS} streams; {RELAYS} relays delivered them with {redelivered} redeliveries and \
             {concurrent} overlapping deliveries across relays; applied once each by runners {by_runner:?}; \
             takeover after SIGKILL of the lease holder: {takeover:?} (lease {LEASE:?}, poll {POLL:?})",
            events.len()
        );
        sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE {prefix}applied, {prefix}balances")))
            .execute(store.pool())
            .await
            .unwrap();
        pg::drop_tables(&store).await;
    });
}
