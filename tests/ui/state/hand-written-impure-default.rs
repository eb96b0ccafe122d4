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

// Checked, and refused: every replay would start from another state.
#[es::pure]
impl Default for Counter {
    fn default() -> Self {
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        Counter { total: seed }
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
