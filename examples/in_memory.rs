//! A bank account on the in-memory store, from the first command to a replay.
//!
//! Opens an account, deposits and withdraws, has a command refused by the domain,
//! loses an optimistic-concurrency race and wins it on retry, then rebuilds the
//! account from its events and checks that the replay gives the very same state.
//!
//! Run it with `cargo run --example in_memory`. (The main example, `bank`, does the
//! same on the embedded SQLite store and survives a crash.)

use std::sync::Arc;

use es::{Aggregate, Context, Event, EventStore, MemoryStore, Metadata, Repository, Retry, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(name = "account.opened")]
    Opened {
        owner: String,
        opened_at: es::Timestamp,
    },
    Deposited {
        amount: u64,
    },
    Withdrawn {
        amount: u64,
    },
}

#[aggregate]
#[derive(Debug, Default, PartialEq)]
struct Account {
    owner: String,
    balance: u64,
    opened_at: Option<es::Timestamp>,
}

// `apply` only folds: the time of opening comes from the event, never from a clock.
#[aggregate]
impl Aggregate for Account {
    type Event = AccountEvent;

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { owner, opened_at } => {
                self.owner.clone_from(owner);
                self.opened_at = Some(*opened_at);
            }
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum BankError {
    #[error("account is already open")]
    AlreadyOpen,
    #[error("account is not open")]
    NotOpen,
    #[error("insufficient funds: balance is {balance}, {asked} asked")]
    InsufficientFunds { balance: u64, asked: u64 },
}

// Decisions read the state and the command context (time, ids) and return events.
impl Account {
    fn open(&self, owner: &str, ctx: &Context<'_>) -> Result<Vec<AccountEvent>, BankError> {
        if self.opened_at.is_some() {
            return Err(BankError::AlreadyOpen);
        }
        Ok(vec![AccountEvent::Opened { owner: owner.into(), opened_at: ctx.now() }])
    }

    fn deposit(&self, amount: u64) -> Result<Vec<AccountEvent>, BankError> {
        if self.opened_at.is_none() {
            return Err(BankError::NotOpen);
        }
        Ok(vec![AccountEvent::Deposited { amount }])
    }

    fn withdraw(&self, amount: u64) -> Result<Vec<AccountEvent>, BankError> {
        if amount > self.balance {
            return Err(BankError::InsufficientFunds { balance: self.balance, asked: amount });
        }
        Ok(vec![AccountEvent::Withdrawn { amount }])
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bank = Arc::new(Repository::new(MemoryStore::new()));

    let opened = bank.execute("acc-1", |account: &Account, ctx| account.open("Ada", ctx)).await?;
    println!("opened acc-1 for {} at {}", opened.state.owner, opened.events[0].occurred_at());

    bank.execute("acc-1", |account: &Account, _| account.deposit(100)).await?;
    let after = bank.execute("acc-1", |account: &Account, _| account.withdraw(30)).await?;
    println!("deposited 100, withdrew 30: balance {} at version {}", after.state.balance, after.version);

    match bank.execute("acc-1", |account: &Account, _| account.withdraw(500)).await {
        Err(es::CommandError::Rejected(error)) => println!("refused by the domain: {error}"),
        other => return Err(format!("expected a refusal, got {other:?}").into()),
    }

    // Two tellers decide on the same version; the store lets exactly one append.
    let stale = bank.load::<Account>("acc-1").await?;
    bank.execute("acc-1", |account: &Account, _| account.deposit(5)).await?;
    let expected = es::ExpectedVersion::Exact(stale.version());
    let late = es::NewEvent::encode(
        &AccountEvent::Deposited { amount: 7 },
        es::IdSource::next_id(&es::RandomIds),
        es::Clock::now(&es::SystemClock),
        Metadata::default(),
    )?;
    match bank.store().append(Account::stream_type(), "acc-1", expected, vec![late]).await {
        Err(conflict @ es::StoreError::Conflict { .. }) => println!("second teller lost the race: {conflict}"),
        other => return Err(format!("expected a conflict, got {other:?}").into()),
    }
    // With retries, a command reloads the fresh state and decides again.
    let retried = bank
        .execute_with("acc-1", Retry::attempts(3), Metadata::default(), |account: &Account, _| account.deposit(7))
        .await?;
    println!("retried deposit of 7: balance {} at version {}", retried.state.balance, retried.version);

    let replayed = bank.load::<Account>("acc-1").await?;
    let recorded = bank.store().read_stream(Account::stream_type(), "acc-1", 1).await?;
    println!("\n{} events recorded for acc-1:", recorded.len());
    for event in &recorded {
        println!("  v{} {:<16} {}", event.stream_version, event.event_type, event.payload);
    }
    assert_eq!(replayed.state(), &retried.state);
    println!("\nreplayed state equals the state after the last command: balance {}", replayed.state().balance);
    Ok(())
}
