use es::{Aggregate, Snapshot, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum AccountEvent {
    Deposited { amount: u64 },
    Withdrawn { amount: u64 },
}

#[aggregate]
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub balance: u64,
}

#[aggregate(snapshot(version = 3, every = 250))]
impl Aggregate for Account {
    type Event = AccountEvent;

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
    }
}

fn main() {
    let policy = Account::SNAPSHOT.expect("snapshots are on");
    assert_eq!((policy.version, policy.every), (3, 250));
    let state = Account { balance: 42 };
    let json = state.encode_snapshot().unwrap().unwrap();
    let snapshot = Snapshot { stream_version: 250, schema_version: 3, state: json };
    assert_eq!(Account::decode_snapshot(&snapshot.state).unwrap().unwrap(), state);
}
