use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum CounterEvent {
    Incremented { by: std::sync::atomic::AtomicU64 },
}

fn main() {}
