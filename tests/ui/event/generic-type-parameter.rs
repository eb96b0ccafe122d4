use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
struct Added<T> {
    item: T,
}

fn main() {}
