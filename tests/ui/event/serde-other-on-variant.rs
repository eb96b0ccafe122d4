use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    Opened {
        owner: String,
    },
    #[serde(other)]
    Unknown,
}

fn main() {}
