use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(nmae = "account.opened")]
struct Opened {
    owner: String,
}

fn main() {}
