//! What the benches share: the bank-account domain they record, the raw side's
//! hand-written decoding, the counting sink, and the measuring helpers.

#![allow(dead_code, reason = "each bench uses a different part")]

use std::error::Error;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use es::{Aggregate, Event, Metadata, NewEvent, Sink, SinkError, StoredEvent, Timestamp, aggregate};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub type BoxError = Box<dyn Error + Send + Sync>;

// ---------------------------------------------------------------------------------
// The domain: a bank account, with payloads of about 100 bytes of JSON.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum AccountEvent {
    Opened { owner: String, currency: String, branch: String, overdraft_limit_cents: u64 },
    Deposited { amount_cents: u64, reference: String, channel: String },
    Withdrawn { amount_cents: u64, reference: String, reason: String },
}

#[aggregate]
#[derive(Debug, Default)]
pub struct Account {
    pub open: bool,
    pub balance_cents: i64,
    pub overdraft_limit_cents: u64,
    pub deposits: u64,
    pub withdrawals: u64,
}

#[aggregate]
impl Aggregate for Account {
    type Event = AccountEvent;
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { overdraft_limit_cents, .. } => {
                self.open = true;
                self.overdraft_limit_cents = *overdraft_limit_cents;
            }
            AccountEvent::Deposited { amount_cents, .. } => {
                self.deposits += 1;
                self.balance_cents += i64::try_from(*amount_cents).unwrap_or(i64::MAX);
            }
            AccountEvent::Withdrawn { amount_cents, .. } => {
                self.withdrawals += 1;
                self.balance_cents -= i64::try_from(*amount_cents).unwrap_or(i64::MAX);
            }
        }
    }
}

/// The `n`-th event of a stream (0-based): opened first, then deposits and withdrawals.
pub fn account_event(n: u64) -> AccountEvent {
    if n == 0 {
        return AccountEvent::Opened {
            owner: "Ada Lovelace (customer 0042-7781)".into(),
            currency: "EUR".into(),
            branch: "Amsterdam Zuidas".into(),
            overdraft_limit_cents: 50_000,
        };
    }
    if n.is_multiple_of(3) {
        AccountEvent::Withdrawn {
            amount_cents: 4_250 + n % 100,
            reference: format!("ATM-NL-{n:010}"),
            reason: "cash withdrawal, card ending 4417".into(),
        }
    } else {
        AccountEvent::Deposited {
            amount_cents: 125_000 + n % 1000,
            reference: format!("INV-2025-{n:08}-ACME-GMBH"),
            channel: "sepa-credit-transfer".into(),
        }
    }
}

pub fn new_event(n: u64) -> NewEvent {
    NewEvent::encode(
        &account_event(n),
        Uuid::now_v7(),
        Timestamp::from_system_time(std::time::SystemTime::now()),
        Metadata::default(),
    )
    .expect("the event encodes")
}

// The raw side's decoding: one payload struct per type, decoded by serde directly.
#[derive(Deserialize)]
pub struct Opened {
    owner: String,
    currency: String,
    branch: String,
    overdraft_limit_cents: u64,
}
#[derive(Deserialize)]
pub struct Deposited {
    amount_cents: u64,
    reference: String,
    channel: String,
}
#[derive(Deserialize)]
pub struct Withdrawn {
    amount_cents: u64,
    reference: String,
    reason: String,
}

pub fn raw_decode(event_type: &str, payload: &str) -> Result<AccountEvent, BoxError> {
    Ok(match event_type {
        "Opened" => {
            let p: Opened = serde_json::from_str(payload)?;
            AccountEvent::Opened {
                owner: p.owner,
                currency: p.currency,
                branch: p.branch,
                overdraft_limit_cents: p.overdraft_limit_cents,
            }
        }
        "Deposited" => {
            let p: Deposited = serde_json::from_str(payload)?;
            AccountEvent::Deposited { amount_cents: p.amount_cents, reference: p.reference, channel: p.channel }
        }
        "Withdrawn" => {
            let p: Withdrawn = serde_json::from_str(payload)?;
            AccountEvent::Withdrawn { amount_cents: p.amount_cents, reference: p.reference, reason: p.reason }
        }
        other => return Err(format!("unknown event type {other}").into()),
    })
}

// ---------------------------------------------------------------------------------
// The sink both relays deliver to: it counts events and payload bytes.

#[derive(Clone, Default)]
pub struct CountingSink {
    pub events: Arc<AtomicU64>,
    pub bytes: Arc<AtomicU64>,
}

impl Sink for CountingSink {
    async fn deliver(&self, events: &[StoredEvent], _lease: es::LeaseGeneration) -> Result<(), SinkError> {
        let bytes: usize = events.iter().map(|event| event.payload.len()).sum();
        self.events.fetch_add(events.len() as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        Ok(())
    }
}

pub fn median(samples: &[Duration]) -> Duration {
    let mut samples = samples.to_vec();
    samples.sort();
    samples[samples.len() / 2]
}

pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Whether the workload named `name` runs: all of them, unless `--only <name>` picks
/// one (for profiling a single workload).
pub fn runs(name: &str) -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).is_none_or(|only| only == name)
}

#[derive(Default)]
/// The durations of the two sides, round by round.
pub struct Pair {
    pub es: Vec<Duration>,
    pub raw: Vec<Duration>,
}

impl Pair {
    pub fn push(&mut self, (es, raw): (Duration, Duration)) {
        self.es.push(es);
        self.raw.push(raw);
    }

    /// Runs both sides once, in the given order.
    pub async fn measure<F, Fut>(&mut self, es_first: bool, mut run: F) -> Result<(), BoxError>
    where
        F: FnMut(bool) -> Fut,
        Fut: Future<Output = Result<Duration, BoxError>>,
    {
        for use_es in if es_first { [true, false] } else { [false, true] } {
            let elapsed = run(use_es).await?;
            if use_es { self.es.push(elapsed) } else { self.raw.push(elapsed) }
        }
        Ok(())
    }

    #[allow(clippy::cast_precision_loss, reason = "operation counts are far below 2^52")]
    pub fn report(&self, name: &str, operations: usize, unit: &str) {
        let rate = |d: Duration| operations as f64 / d.as_secs_f64();
        let (es, raw) = (rate(median(&self.es)), rate(median(&self.raw)));
        let mut ratios: Vec<f64> =
            self.es.iter().zip(&self.raw).map(|(e, r)| r.as_secs_f64() / e.as_secs_f64() * 100.0).collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "{name}: es {es:.0} {unit}/s, raw {raw:.0} {unit}/s, ratio {:.0}%   (per-round ratios {:.0}%..{:.0}%, {} rounds)",
            es / raw * 100.0,
            ratios[0],
            ratios[ratios.len() - 1],
            self.es.len()
        );
    }
}
