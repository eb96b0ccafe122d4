use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    Deposited {
        amount: u64,
        #[serde(skip_deserializing)]
        note: String,
    },
}

fn main() {}
