use es::Event;
use serde::{Deserialize, Serialize};
use std::sync::RwLock;

#[derive(Serialize, Deserialize, Event)]
struct Pair {
    pair: (String, RwLock<u8>),
}

fn main() {}
