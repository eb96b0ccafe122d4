use es::Event;
use serde::{Deserialize, Serialize};

fn opened_v1(json: String) -> String {
    json
}

#[derive(Serialize, Deserialize, Event)]
#[event(version = 2, upcast(1 = opened_v1))]
struct Opened {
    owner: String,
}

fn main() {}
