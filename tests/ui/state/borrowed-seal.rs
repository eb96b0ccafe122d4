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

#[aggregate]
impl Aggregate for Counter {
    type Event = CounterEvent;

    fn apply(&mut self, event: &CounterEvent) {
        let CounterEvent::Added { n } = event;
        self.total += n;
    }
}



#[aggregate]
#[derive(Debug, Default)]
pub struct Sneaky {
    total: u64,
}

// Another aggregate's seal does not fit: the seal names the type it was made for.
impl es::__private::PurityChecked for Sneaky {
    type Seal = <Counter as es::__private::PurityChecked>::Seal;
    const READS_ENVELOPE: bool = true;
}

impl Aggregate for Sneaky {
    type Event = CounterEvent;

    fn apply(&mut self, event: &CounterEvent) {
        let CounterEvent::Added { n } = event;
        self.total += n;
    }
}
fn main() {}
