//! The bank's one aggregate: its events and its fold. Shared by the bank example and
//! its admin binary (`examples/bank_admin.rs`).

use es::{Aggregate, Event, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum AccountEvent {
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
pub struct Account {
    pub owner: String,
    pub balance: u64,
    pub open: bool,
}

// `apply` only folds: no clock, no I/O. `#[aggregate]` refuses anything else.
#[aggregate]
impl Aggregate for Account {
    type Event = AccountEvent;

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { owner, .. } => {
                self.owner.clone_from(owner);
                self.open = true;
            }
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
    }
}
