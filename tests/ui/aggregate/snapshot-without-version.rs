use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub struct Deposited {
    pub amount: u64,
}

#[aggregate]
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Account {
    pub balance: u64,
}

#[aggregate(snapshot(every = 50))]
impl Aggregate for Account {
    type Event = Deposited;

    fn apply(&mut self, event: &Deposited) {
        self.balance += event.amount;
    }
}

fn main() {}
