use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[serde(tag = "type")]
enum AccountEvent {
    Opened { owner: String },
    Closed {},
}

fn main() {}
