use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum AccountEvent {
    #[event(name = "account.opened", version = 2)]
    Opened {
        owner: String,
        overdraft_limit: u64,
    },
    Deposited {
        amount: u64,
    },
    Withdrawn {
        amount: u64,
    },
    Closed,
}

#[aggregate]
#[derive(Debug, Default)]
pub struct Account {
    owner: String,
    balance: u64,
    overdraft: u64,
    limit: u64,
    largest_deposit: u64,
    open: bool,
}

#[aggregate]
impl Aggregate for Account {
    type Event = AccountEvent;

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { owner, overdraft_limit } => {
                self.owner.clone_from(owner);
                self.limit = *overdraft_limit;
                self.open = true;
            }
            AccountEvent::Deposited { amount } => {
                let covered = std::cmp::min(*amount, self.overdraft);
                self.overdraft -= covered;
                self.balance = self.balance.saturating_add(amount - covered);
                self.largest_deposit = std::cmp::max(self.largest_deposit, *amount);
            }
            AccountEvent::Withdrawn { amount } => {
                let from_balance = std::cmp::min(*amount, self.balance);
                self.balance -= from_balance;
                self.overdraft += u64::saturating_sub(*amount, from_balance);
            }
            AccountEvent::Closed => self.open = false,
        }
    }
}

fn main() {
    let mut account = Account::default();
    for event in [
        AccountEvent::Opened { owner: "ada".into(), overdraft_limit: 50 },
        AccountEvent::Deposited { amount: 30 },
        AccountEvent::Withdrawn { amount: 50 },
        AccountEvent::Deposited { amount: 100 },
    ] {
        account.apply(&event);
    }
    assert_eq!(account.owner, "ada");
    assert_eq!((account.balance, account.overdraft, account.limit), (80, 0, 50));
    assert_eq!(account.largest_deposit, 100);
    assert!(account.open);
    account.apply(&AccountEvent::Closed);
    assert!(!account.open);
}
