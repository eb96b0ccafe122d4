//! The derive reads field types as written, so an alias hides a `Cell` from it; the
//! `Sync` bound of `Event` still refuses this one (but not an alias of a `Mutex`).
use es::Event;
use serde::{Deserialize, Serialize};

type Counter = std::cell::Cell<u64>;

#[derive(Serialize, Deserialize, Event)]
struct Counted {
    count: Counter,
}

fn main() {}
