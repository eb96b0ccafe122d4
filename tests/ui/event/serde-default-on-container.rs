use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize, Event)]
#[serde(default)]
struct Deposited {
    amount: u64,
    currency: String,
}

fn main() {}
