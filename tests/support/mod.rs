//! A small bank model shared by the integration tests.

#![allow(dead_code, reason = "each test crate uses a different part of the model")]

pub mod faults;
pub mod once;
pub mod process;

use es::{Context, Event, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum AccountEvent {
    #[event(name = "account.opened", version = 2)]
    Opened {
        owner: String,
        at: es::Timestamp,
    },
    Deposited {
        amount: u64,
    },
    Withdrawn {
        amount: u64,
    },
    /// Values that stores are tempted to round or mangle.
    Noted(Note),
    Closed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub text: String,
    pub big: u128,
    pub small: i128,
    pub ratio: f64,
    pub tiny: f32,
}

#[aggregate]
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Account {
    pub owner: String,
    pub opened_at: Option<es::Timestamp>,
    pub balance: u64,
    pub notes: Vec<Note>,
    pub closed: bool,
    pub events: u64,
}

#[aggregate]
impl es::Aggregate for Account {
    type Event = AccountEvent;

    fn apply(&mut self, event: &AccountEvent) {
        self.events += 1;
        match event {
            AccountEvent::Opened { owner, at } => {
                self.owner.clone_from(owner);
                self.opened_at = Some(*at);
            }
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
            AccountEvent::Noted(note) => self.notes.push(note.clone()),
            AccountEvent::Closed => self.closed = true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    #[error("account is not open")]
    NotOpen,
    #[error("account is already open")]
    AlreadyOpen,
    #[error("insufficient funds: balance {balance}, asked {asked}")]
    InsufficientFunds { balance: u64, asked: u64 },
}

impl Account {
    pub fn open(&self, owner: &str, ctx: &Context<'_>) -> Result<Vec<AccountEvent>, BankError> {
        if self.opened_at.is_some() {
            return Err(BankError::AlreadyOpen);
        }
        Ok(vec![AccountEvent::Opened { owner: owner.to_owned(), at: ctx.now() }])
    }

    pub fn deposit(&self, amount: u64) -> Result<Vec<AccountEvent>, BankError> {
        if self.opened_at.is_none() || self.closed {
            return Err(BankError::NotOpen);
        }
        Ok(vec![AccountEvent::Deposited { amount }])
    }

    pub fn withdraw(&self, amount: u64) -> Result<Vec<AccountEvent>, BankError> {
        if self.opened_at.is_none() || self.closed {
            return Err(BankError::NotOpen);
        }
        if amount > self.balance {
            return Err(BankError::InsufficientFunds { balance: self.balance, asked: amount });
        }
        Ok(vec![AccountEvent::Withdrawn { amount }])
    }
}

/// Notes whose values every store must keep bit for bit.
pub fn awkward_notes() -> Vec<Note> {
    vec![
        Note { text: String::new(), big: u128::MAX, small: i128::MIN, ratio: 0.1 + 0.2, tiny: f32::MIN_POSITIVE },
        Note {
            text: "naïve 日本語 🦀 \u{0} \"quoted\" \\ \n\t".into(),
            big: u128::from(u64::MAX) + 1,
            small: -1,
            ratio: f64::MAX,
            tiny: -0.0,
        },
        Note { text: "\u{10FFFF}\u{7F}".into(), big: 0, small: i128::MAX, ratio: f64::MIN_POSITIVE / 2.0, tiny: 1e-45 },
        Note { text: "x".repeat(10_000), big: 1, small: 0, ratio: -1.0 / 3.0, tiny: 3.402_823_5e38 },
    ]
}

/// The same account with snapshots on: every 3 events.
#[aggregate]
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshottedAccount {
    pub balance: u64,
    pub events: u64,
}

#[aggregate(snapshot(version = 2, every = 3))]
impl es::Aggregate for SnapshottedAccount {
    type Event = AccountEvent;

    fn apply(&mut self, event: &AccountEvent) {
        self.events += 1;
        match event {
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
            AccountEvent::Opened { .. } | AccountEvent::Noted(_) | AccountEvent::Closed => {}
        }
    }
}

/// A reading whose ratio the state computes: 0/0 and 1/0 give a NaN or an infinite
/// float that JSON cannot hold, although every event is finite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum GaugeEvent {
    Measured { numerator: f64, denominator: f64 },
}

/// A state that can come to hold non-finite floats, snapshotted after every event.
/// JSON writes a NaN or infinite `Option<f64>` as `null`, which reads back as `None`.
#[aggregate]
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Gauge {
    pub ratio: Option<f64>,
    pub readings: u64,
}

#[aggregate(snapshot(version = 1, every = 1))]
impl es::Aggregate for Gauge {
    type Event = GaugeEvent;

    fn apply(&mut self, event: &GaugeEvent) {
        let GaugeEvent::Measured { numerator, denominator } = event;
        self.ratio = Some(numerator / denominator);
        self.readings += 1;
    }
}

impl Gauge {
    /// The state bit for bit (a NaN equals itself here).
    pub fn bits(&self) -> (Option<u64>, u64) {
        (self.ratio.map(f64::to_bits), self.readings)
    }
}
