use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(name = "")]
struct Opened {
    owner: String,
}

fn main() {}
