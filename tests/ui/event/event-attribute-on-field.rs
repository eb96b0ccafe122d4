use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
struct Opened {
    #[event(name = "owner")]
    owner: String,
}

fn main() {}
