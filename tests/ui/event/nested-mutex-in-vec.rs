use es::Event;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

#[derive(Serialize, Deserialize, Event)]
struct ItemsAdded {
    items: Vec<Mutex<String>>,
}

fn main() {}
