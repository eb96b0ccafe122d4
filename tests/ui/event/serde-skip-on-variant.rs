use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    #[serde(skip)]
    Draft,
    Opened {
        owner: String,
    },
}

fn main() {}
