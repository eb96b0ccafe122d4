use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum CounterEvent {
    Added { n: u64 },
}

#[aggregate]
#[derive(Debug)]
pub struct Counter {
    total: u64,
}

// The initial state is part of every replay, but this impl was not checked.
impl Default for Counter {
    fn default() -> Self {
        Counter { total: 10 }
    }
}

#[aggregate]
impl Aggregate for Counter {
    type Event = CounterEvent;

    fn apply(&mut self, event: &CounterEvent) {
        let CounterEvent::Added { n } = event;
        self.total += n;
    }
}

fn main() {}
