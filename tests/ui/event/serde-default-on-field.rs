use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
struct Deposited {
    amount: u64,
    #[serde(default)]
    currency: String,
}

fn main() {}
