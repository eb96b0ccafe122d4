use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
struct Renamed {
    name: &'static str,
}

fn main() {}
