use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum CounterEvent {
    Added { n: u64 },
}

// The impl is checked, but nothing vouches that the state is data.
#[derive(Debug, Default)]
pub struct Counter {
    total: u64,
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
