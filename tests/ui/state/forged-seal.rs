use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum CounterEvent {
    Added { n: u64 },
}

#[aggregate]
#[derive(Debug, Default)]
pub struct Counter {
    total: u64,
}

// A hand-written proof with a guessed seal.
impl es::__private::PurityChecked for Counter {
    type Seal = es::__private::Seal<Self, { es::__private::PURITY }, 0>;
    const READS_ENVELOPE: bool = true;
}

impl Aggregate for Counter {
    type Event = CounterEvent;

    fn apply(&mut self, event: &CounterEvent) {
        let CounterEvent::Added { n } = event;
        self.total += n;
    }
}

fn main() {}
