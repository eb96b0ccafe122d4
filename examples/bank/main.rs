//! A bank on the embedded default store (a SQLite file), surviving a crash.
//!
//! 1. Opens (or reopens) `target/es-bank/bank.db` and opens three accounts.
//! 2. Deposits and withdraws; each command writes a business row (a ledger line) in
//!    the same transaction as its events and their outbox rows.
//! 3. Two tellers update one account at once: one loses the optimistic-concurrency
//!    race, and its retry decides again on the fresh state.
//! 4. Starts a worker process that keeps taking deposits while relaying events to a
//!    JSON-lines file and projecting balances into a read-model table, kills it with
//!    SIGKILL in the middle of the work, and starts it again to finish.
//! 5. Prints what was recorded, delivered, deduplicated and projected, and checks that
//!    the read model equals the fold of the events.
//!
//! Run it with `cargo run --example bank`; run it again to continue from the file.
//! Pass a directory as the first argument to keep the files elsewhere.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use es::projection::HandlerError;
use es::relay::Outbox;
use es::sink::JsonLinesSink;
use es::sqlite::{Projection, ProjectionRunner, SqliteStore};
use es::{
    Aggregate, Context, EventStore, ExpectedVersion, Metadata, NewEvent, Relay, RelayOptions, Repository, StoredEvent,
};

mod account;

use account::{Account, AccountEvent};

#[derive(Debug, thiserror::Error)]
enum BankError {
    #[error("account is already open")]
    AlreadyOpen,
    #[error("account is not open")]
    NotOpen,
    #[error("insufficient funds: balance is {balance}, {asked} asked")]
    InsufficientFunds { balance: u64, asked: u64 },
}

// Decisions: read the state (and the command's clock through `ctx`), return events.
impl Account {
    fn open(&self, owner: &str, ctx: &Context<'_>) -> Result<Vec<AccountEvent>, BankError> {
        if self.open {
            return Err(BankError::AlreadyOpen);
        }
        Ok(vec![AccountEvent::Opened { owner: owner.into(), opened_at: ctx.now() }])
    }

    fn deposit(&self, amount: u64) -> Result<Vec<AccountEvent>, BankError> {
        if !self.open {
            return Err(BankError::NotOpen);
        }
        Ok(vec![AccountEvent::Deposited { amount }])
    }

    fn withdraw(&self, amount: u64) -> Result<Vec<AccountEvent>, BankError> {
        if !self.open {
            return Err(BankError::NotOpen);
        }
        if amount > self.balance {
            return Err(BankError::InsufficientFunds { balance: self.balance, asked: amount });
        }
        Ok(vec![AccountEvent::Withdrawn { amount }])
    }
}

/// The read model: balances per account, kept in the same database, exactly once.
struct Balances;

impl Projection for Balances {
    fn name(&self) -> &'static str {
        "balances"
    }

    fn setup(&mut self, tx: &rusqlite::Connection) -> Result<(), HandlerError> {
        tx.execute_batch("CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)")?;
        Ok(())
    }

    fn handle(&mut self, tx: &rusqlite::Connection, event: &StoredEvent) -> Result<(), HandlerError> {
        let recorded = event.decode_ref::<AccountEvent>()?;
        let delta = match recorded.event() {
            AccountEvent::Opened { .. } => 0,
            AccountEvent::Deposited { amount } => i64::try_from(*amount)?,
            AccountEvent::Withdrawn { amount } => -i64::try_from(*amount)?,
        };
        tx.execute(
            "INSERT INTO balances VALUES (?1, ?2) ON CONFLICT (account) DO UPDATE SET balance = balance + ?2",
            rusqlite::params![recorded.stream_id(), delta],
        )?;
        Ok(())
    }

    fn reset(&mut self, tx: &rusqlite::Connection) -> Result<(), HandlerError> {
        tx.execute("DELETE FROM balances", [])?;
        Ok(())
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

const ACCOUNTS: [(&str, &str); 3] = [("acc-ada", "Ada"), ("acc-grace", "Grace"), ("acc-edsger", "Edsger")];

/// Runs one command: load, decide, then append the events together with a ledger
/// row, in one transaction. If anything fails, neither is written. When another
/// writer appended first, it loads the fresh state and decides again (3 attempts).
async fn command(
    bank: &Repository<SqliteStore>,
    account: &str,
    mut decide: impl FnMut(&Account, &Context<'_>) -> Result<Vec<AccountEvent>, BankError>,
) -> Result<Vec<AccountEvent>, Error> {
    let mut attempt = 1;
    loop {
        let loaded = bank.load::<Account>(account).await?;
        let now = es::Clock::now(&es::SystemClock);
        let ids = es::RandomIds;
        let ctx = Context::new(now, &ids, account, loaded.version());
        let events = decide(loaded.state(), &ctx)?;
        let new: Vec<NewEvent> = events
            .iter()
            .map(|event| NewEvent::encode(event, es::IdSource::next_id(&ids), now, Metadata::default()))
            .collect::<Result<_, _>>()?;
        let expected = match loaded.version() {
            0 => ExpectedVersion::NoStream,
            version => ExpectedVersion::Exact(version),
        };
        let (stream, line) = (account.to_owned(), format!("{events:?}"));
        let outcome = bank
            .store()
            .transaction(move |tx| {
                tx.execute("INSERT INTO ledger (account, entry) VALUES (?1, ?2)", [&stream, &line])?;
                tx.append(Account::stream_type(), &stream, expected, new)?;
                Ok::<_, es::StoreError>(())
            })
            .await;
        match outcome {
            Err(es::StoreError::Conflict { .. }) if attempt < 3 => attempt += 1,
            Err(error) => return Err(error.into()),
            Ok(()) => return Ok(events),
        }
    }
}

async fn open_store(dir: &Path) -> Result<SqliteStore, Error> {
    std::fs::create_dir_all(dir)?;
    let store = SqliteStore::open(dir.join("bank.db")).await?;
    store
        .transaction(|tx| {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY, account TEXT NOT NULL, entry TEXT NOT NULL)",
            )?;
            Ok::<_, es::StoreError>(())
        })
        .await?;
    Ok(store)
}

fn relay_options() -> RelayOptions {
    // A short lease, so that a restarted worker takes over from a killed one quickly.
    RelayOptions {
        lease: Duration::from_millis(300),
        delivery_timeout: Duration::from_millis(100),
        ..RelayOptions::default()
    }
}

/// The worker process: takes `deposits` deposits while the relay and the projection
/// run beside it, then waits until both have caught up.
async fn worker(dir: &Path, deposits: u64) -> Result<(), Error> {
    let store = open_store(dir).await?;
    let relay = Relay::new(store.clone(), JsonLinesSink::open(dir.join("events.jsonl"))?, relay_options());
    let relay = tokio::spawn(relay.run(std::future::pending()));
    let runner = ProjectionRunner::new(store.clone(), Balances).poll_interval(Duration::from_millis(20));
    let projection = tokio::spawn(runner.run(std::future::pending()));
    let bank = Repository::new(store.clone());
    for n in 0..deposits {
        let (account, _) = ACCOUNTS[usize::try_from(n % 3)?];
        command(&bank, account, |a, _| a.deposit(n % 50 + 1)).await?;
    }
    let checkpoint = ProjectionRunner::new(store.clone(), Balances);
    while store.status().await?.pending > 0 || checkpoint.lag().await? > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    relay.abort();
    projection.abort();
    Ok(())
}

/// Starts a worker process. Its standard input is a pipe that only this process
/// holds: when this process ends, however it ends (even by SIGKILL), the pipe closes
/// and the worker stops too, so no worker outlives the example.
fn start_worker(dir: &Path, deposits: u64) -> Result<std::process::Child, Error> {
    Ok(Command::new(std::env::current_exe()?)
        .arg("--worker")
        .arg(dir)
        .arg(deposits.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?)
}

/// In the worker: ends the process as soon as the parent's end of the standard input
/// pipe closes, which happens when the parent dies.
fn exit_with_parent() {
    std::thread::spawn(|| {
        // Nothing is ever written to the pipe: this returns at end of file (the parent
        // is gone) or on an error, and both mean that nobody waits for this worker.
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(3);
    });
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--worker") {
        exit_with_parent();
        let dir = PathBuf::from(&args[2]);
        return worker(&dir, args[3].parse()?).await;
    }
    let dir = args.get(1).map_or_else(|| PathBuf::from("target/es-bank"), PathBuf::from);
    let store = open_store(&dir).await?;
    let before = store.head();
    println!("bank database: {} ({} events already recorded)", store.path().display(), before);
    let bank = Repository::new(store.clone());

    for (account, owner) in ACCOUNTS {
        match command(&bank, account, |a, ctx| a.open(owner, ctx)).await {
            Ok(_) => println!("opened {account} for {owner}"),
            Err(error) if error.to_string() == BankError::AlreadyOpen.to_string() => {
                println!("{account} is open already (this file was used before)");
            }
            Err(error) => return Err(error),
        }
    }
    command(&bank, "acc-ada", |a, _| a.deposit(100)).await?;
    command(&bank, "acc-ada", |a, _| a.withdraw(30)).await?;
    // One more than the balance, whatever earlier runs left in the file.
    match command(&bank, "acc-grace", |a, _| a.withdraw(a.balance + 1)).await {
        Err(error) => println!("refused: withdrawing more than acc-grace holds: {error}"),
        Ok(_) => return Err("an overdraft went through".into()),
    }

    // Two tellers decide on the same version of acc-grace; exactly one append wins.
    let stale = bank.load::<Account>("acc-grace").await?;
    command(&bank, "acc-grace", |a, _| a.deposit(10)).await?;
    let late = NewEvent::encode(
        &AccountEvent::Deposited { amount: 5 },
        es::IdSource::next_id(&es::RandomIds),
        es::Clock::now(&es::SystemClock),
        Metadata::default(),
    )?;
    let expected = ExpectedVersion::Exact(stale.version());
    match store.append(Account::stream_type(), "acc-grace", expected, vec![late]).await {
        Err(conflict @ es::StoreError::Conflict { .. }) => println!("second teller lost the race: {conflict}"),
        other => return Err(format!("expected a conflict, got {other:?}").into()),
    }
    command(&bank, "acc-grace", |a, _| a.deposit(5)).await?;
    let grace = bank.load::<Account>("acc-grace").await?;
    println!(
        "its retry decided again on the fresh state: acc-grace balance {} at version {}",
        grace.state().balance,
        grace.version()
    );

    // A worker process takes deposits while relaying and projecting; kill it mid-work.
    let started = Instant::now();
    let mut child = start_worker(&dir, 1_000_000)?;
    let head_at_start = store.head();
    while started.elapsed() < Duration::from_millis(600) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill()?;
    child.wait()?;
    let recorded_before_restart = store.read_all(es::Cursor::at_position(head_at_start), usize::MAX).await?.len();
    let status = store.status().await?;
    println!(
        "killed the worker (SIGKILL) after {:?}: it had recorded {recorded_before_restart} deposits, {} events not yet delivered",
        started.elapsed(),
        status.pending
    );
    let restarted = Instant::now();
    let mut worker = start_worker(&dir, 50)?;
    // `wait` would close the worker's standard input first, which tells it to stop.
    let _keep_worker_alive = worker.stdin.take();
    let status = worker.wait()?;
    if !status.success() {
        return Err(format!("the restarted worker failed: {status}").into());
    }
    println!("restarted the worker: it took 50 more deposits and caught up in {:?}", restarted.elapsed());

    summary(&store, &dir, before).await
}

async fn summary(store: &SqliteStore, dir: &Path, before: u64) -> Result<(), Error> {
    let events = store.read_all(es::Cursor::START, usize::MAX).await?;
    let text = std::fs::read_to_string(dir.join("events.jsonl"))?;
    let mut delivered = 0;
    let mut unique = HashSet::new();
    for line in text.lines() {
        // A line torn by the kill does not parse; its event was delivered again.
        if let Ok(line) = serde_json::from_str::<serde_json::Value>(line) {
            delivered += 1;
            unique.insert(line["event_id"].as_str().unwrap_or_default().to_owned());
        }
    }
    let ledger: i64 = store.read(|c| c.query_row("SELECT COUNT(*) FROM ledger", [], |r| r.get(0))).await?;
    let model: HashMap<String, i64> = store
        .read(|c| {
            c.prepare("SELECT account, balance FROM balances")?.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
        .await?;
    let checkpoint = ProjectionRunner::new(store.clone(), Balances).checkpoint().await?;

    println!("\nsummary");
    println!("  events recorded     {} ({} in this run)", events.len(), events.len() as u64 - before);
    println!("  ledger rows         {ledger} (one per command, written in the same transactions)");
    println!("  lines delivered     {delivered} to {}", dir.join("events.jsonl").display());
    println!(
        "  after deduplication {} distinct events ({} redelivered after the crash)",
        unique.len(),
        delivered - unique.len()
    );
    println!("  projected up to     position {}", checkpoint.map_or(0, |c| c.cursor.position));
    let mut all_equal = unique.len() == events.len();
    for (account, _) in ACCOUNTS {
        let folded = es::rehydrate::<Account>(account, store.read_stream("Account", account, 1).await?)?;
        let projected = model.get(account).copied().unwrap_or(0);
        let equal = i64::try_from(folded.state().balance)? == projected;
        all_equal &= equal;
        println!(
            "  {account:<11} fold of {:>5} events: balance {:>8}   read model: {projected:>8} {}",
            folded.version(),
            folded.state().balance,
            if equal { "equal" } else { "DIFFERENT" }
        );
    }
    if !all_equal {
        return Err("the read model or the delivered events differ from the recorded events".into());
    }
    println!("every recorded event was delivered, and the read model equals the fold of the events");
    Ok(())
}
