use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
struct LimitChanged {
    limit: std::cell::RefCell<u64>,
}

fn main() {}
