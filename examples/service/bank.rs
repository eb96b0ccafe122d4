//! The bank service of `examples/service.rs`: its domain, the fraud check its
//! withdrawals await, and the read model it serves. Nothing here names a store: the
//! example runs it on SQLite, and `tests/service_postgres.rs` runs this same file on
//! PostgreSQL.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use es::projection::{ProjectionError, Subscriptions, View, ViewError, ViewStore};
use es::{Aggregate, CommandError, Committed, Cursor, Event, Repository, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum AccountEvent {
    #[event(name = "account.opened")]
    Opened {
        owner: String,
    },
    Deposited {
        amount: u64,
    },
    /// Paid out; the fraud check's score is recorded, so replays never ask again.
    Withdrawn {
        amount: u64,
        fraud_score: u8,
    },
    /// Held for review: the fraud check found it too risky.
    WithdrawalHeld {
        amount: u64,
        fraud_score: u8,
    },
}

#[aggregate]
#[derive(Debug, Default)]
pub struct Account {
    open: bool,
    balance: u64,
}

#[aggregate]
impl Aggregate for Account {
    type Event = AccountEvent;

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { .. } => self.open = true,
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount, .. } => self.balance -= amount,
            AccountEvent::WithdrawalHeld { .. } => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    #[error("account is already open")]
    AlreadyOpen,
    #[error("account is not open")]
    NotOpen,
    #[error("insufficient funds: balance is {balance}, {asked} asked")]
    InsufficientFunds { balance: u64, asked: u64 },
    #[error("the fraud check is unavailable ({0}); nothing was recorded, try again later")]
    FraudCheckUnavailable(String),
}

/// The outside service a withdrawal asks before paying out.
pub trait FraudCheck: Send + Sync + 'static {
    /// A risk score from 0 (fine) to 100 (certainly fraud).
    fn score(&self, account: &str, amount: u64) -> impl Future<Output = Result<u8, String>> + Send;
}

/// A fraud check that stands for an HTTP service: large amounts are risky, and it is
/// down for the account `acc-unlucky`. Counts its calls.
#[derive(Debug, Default)]
pub struct MockFraudCheck {
    pub calls: AtomicU32,
}

impl FraudCheck for MockFraudCheck {
    async fn score(&self, account: &str, amount: u64) -> Result<u8, String> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        tokio::task::yield_now().await; // the network round trip
        if account == "acc-unlucky" {
            return Err("503 Service Unavailable".into());
        }
        Ok(if amount >= 1_000 { 95 } else { 5 })
    }
}

/// Scores from this one up are held for review.
const HOLD_FROM: u8 = 80;

/// What the account screen shows: the read model, one document per account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountSummary {
    pub owner: String,
    pub balance: u64,
    pub withdrawals: u32,
    pub held_for_review: Vec<u64>,
}

impl View for AccountSummary {
    fn subscribe(events: &mut Subscriptions<Self>) {
        events.on::<Account>(|summary, event| {
            match event.event() {
                AccountEvent::Opened { owner } => summary.owner.clone_from(owner),
                AccountEvent::Deposited { amount } => summary.balance += amount,
                AccountEvent::Withdrawn { amount, .. } => {
                    summary.balance -= amount;
                    summary.withdrawals += 1;
                }
                AccountEvent::WithdrawalHeld { amount, .. } => summary.held_for_review.push(*amount),
            }
            Ok(())
        });
    }
}

/// The name the summaries are kept under.
pub const SUMMARIES: &str = "account_summaries";

/// What a withdrawal came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    Paid,
    HeldForReview,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Command(#[from] CommandError<BankError>),
    #[error(transparent)]
    ReadModel(#[from] ProjectionError),
    #[error(transparent)]
    View(#[from] ViewError),
}

impl ServiceError {
    /// The domain's refusal, if that is what this is.
    pub fn rejection(&self) -> Option<&BankError> {
        match self {
            ServiceError::Command(CommandError::Rejected(error)) => Some(error),
            _ => None,
        }
    }
}

/// The service: commands on accounts, and the summaries they lead to.
pub struct Bank<S, F> {
    repository: Repository<S>,
    fraud: Arc<F>,
    /// Where this service's last command stands in the log: its reads wait until
    /// the summaries have applied it (read your own writes).
    last_written: Mutex<Cursor>,
}

impl<S: ViewStore, F: FraudCheck> Bank<S, F> {
    pub fn new(store: S, fraud: Arc<F>) -> Self {
        Self { repository: Repository::new(store), fraud, last_written: Mutex::new(Cursor::START) }
    }

    fn written(&self, committed: &Committed<Account>) {
        if let Some(last) = committed.events.last() {
            let mut written = self.last_written.lock().unwrap_or_else(PoisonError::into_inner);
            *written = (*written).max(last.cursor());
        }
    }

    pub async fn open(&self, account: &str, owner: &str) -> Result<(), ServiceError> {
        let owner = owner.to_owned();
        let committed = self
            .repository
            .aggregate::<Account>()
            .execute(account, |state, _ctx| {
                if state.open {
                    return Err(BankError::AlreadyOpen);
                }
                Ok(vec![AccountEvent::Opened { owner: owner.clone() }])
            })
            .await?;
        self.written(&committed);
        Ok(())
    }

    pub async fn deposit(&self, account: &str, amount: u64) -> Result<(), ServiceError> {
        let committed = self
            .repository
            .aggregate::<Account>()
            .execute(account, |state, _ctx| {
                if !state.open {
                    return Err(BankError::NotOpen);
                }
                Ok(vec![AccountEvent::Deposited { amount }])
            })
            .await?;
        self.written(&committed);
        Ok(())
    }

    /// Asks the fraud check, then pays out or holds the withdrawal for review. The
    /// check's outcome is recorded in the event: a replay folds it, never asks again.
    pub async fn withdraw(&self, account: &str, amount: u64) -> Result<Withdrawal, ServiceError> {
        let committed = self
            .repository
            .aggregate::<Account>()
            .execute_async(account, |state, ctx| {
                let fraud = Arc::clone(&self.fraud);
                Box::pin(async move {
                    if !state.open {
                        return Err(BankError::NotOpen);
                    }
                    if state.balance < amount {
                        return Err(BankError::InsufficientFunds { balance: state.balance, asked: amount });
                    }
                    let fraud_score =
                        fraud.score(ctx.stream_id(), amount).await.map_err(BankError::FraudCheckUnavailable)?;
                    Ok(vec![if fraud_score >= HOLD_FROM {
                        AccountEvent::WithdrawalHeld { amount, fraud_score }
                    } else {
                        AccountEvent::Withdrawn { amount, fraud_score }
                    }])
                })
            })
            .await?;
        self.written(&committed);
        Ok(match committed.events.first().map(es::Recorded::event) {
            Some(AccountEvent::WithdrawalHeld { .. }) => Withdrawal::HeldForReview,
            _ => Withdrawal::Paid,
        })
    }

    /// The account's summary, with every command of this service applied.
    pub async fn summary(&self, account: &str) -> Result<Option<AccountSummary>, ServiceError> {
        let summaries = self.repository.store().views::<AccountSummary>(SUMMARIES);
        let wanted = *self.last_written.lock().unwrap_or_else(PoisonError::into_inner);
        // A store may show an event to readers a moment after its commit (PostgreSQL
        // waits for older transactions to finish), so catch up until it is applied.
        loop {
            let report = summaries.catch_up().await?;
            if wanted == Cursor::START || report.checkpoint.is_some_and(|at| at.cursor >= wanted) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(summaries.load(account).await?)
    }

    /// Folds the summaries again from the first event.
    pub async fn rebuild_summaries(&self) -> Result<(), ServiceError> {
        let summaries = self.repository.store().views::<AccountSummary>(SUMMARIES);
        summaries.rebuild().await?;
        summaries.catch_up().await?;
        Ok(())
    }
}

/// The story both the example and the PostgreSQL test tell, with its checks; returns
/// the two accounts' summaries at the end.
pub async fn story<S: ViewStore>(store: S) -> Result<(AccountSummary, AccountSummary), ServiceError> {
    let fraud = Arc::new(MockFraudCheck::default());
    let bank = Bank::new(store, Arc::clone(&fraud));

    bank.open("acc-ada", "Ada").await?;
    bank.open("acc-unlucky", "Grace").await?;
    bank.deposit("acc-ada", 2_500).await?;
    bank.deposit("acc-unlucky", 50).await?;
    println!("opened two accounts and deposited");

    assert_eq!(bank.withdraw("acc-ada", 100).await?, Withdrawal::Paid);
    assert_eq!(bank.withdraw("acc-ada", 1_500).await?, Withdrawal::HeldForReview);
    println!("withdrew 100 (paid) and 1500 (held for review: the fraud check scored it 95)");

    let refused = bank.withdraw("acc-ada", 10_000).await.unwrap_err();
    assert_eq!(refused.rejection(), Some(&BankError::InsufficientFunds { balance: 2_400, asked: 10_000 }));
    let unavailable = bank.withdraw("acc-unlucky", 20).await.unwrap_err();
    assert!(matches!(unavailable.rejection(), Some(BankError::FraudCheckUnavailable(_))), "{unavailable}");
    println!("refused: {refused}\nrefused: {unavailable}");
    // The check is asked only by decisions that get that far.
    assert_eq!(fraud.calls.load(Ordering::Relaxed), 3);

    let ada = bank.summary("acc-ada").await?.expect("Ada's account has a summary");
    let grace = bank.summary("acc-unlucky").await?.expect("Grace's account has a summary");
    assert_eq!((ada.balance, ada.withdrawals, ada.held_for_review.as_slice()), (2_400, 1, &[1_500][..]));
    assert_eq!((grace.balance, grace.withdrawals), (50, 0));
    assert_eq!(bank.summary("acc-nobody").await?, None);

    // Replaying every event into fresh summaries asks the fraud check nothing and
    // gives the same read model.
    bank.rebuild_summaries().await?;
    assert_eq!(bank.summary("acc-ada").await?.as_ref(), Some(&ada));
    assert_eq!(fraud.calls.load(Ordering::Relaxed), 3);
    println!("rebuilt the summaries from the events: the same, without asking the fraud check again");
    Ok((ada, grace))
}
