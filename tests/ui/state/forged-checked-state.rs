use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum CounterEvent {
    Added { n: u64 },
}

// A hand-written state proof instead of the attribute.
#[derive(Debug, Default)]
pub struct Counter {
    total: u64,
}

impl es::__private::CheckedState for Counter {}

#[aggregate]
impl Aggregate for Counter {
    type Event = CounterEvent;

    fn apply(&mut self, event: &CounterEvent) {
        let CounterEvent::Added { n } = event;
        self.total += n;
    }
}

fn main() {}
