use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    Opened {
        owner: String,
    },
    #[event(name = "Opened")]
    OpenedAgain {
        owner: String,
    },
}

fn main() {}
