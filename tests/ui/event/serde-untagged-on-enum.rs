use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[serde(untagged)]
enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

fn main() {}
