use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum SessionEvent {
    Pinged { at: u64 },
}

#[aggregate]
#[derive(Debug)]
pub struct Session {
    pub started: std::time::SystemTime,
    pub last_ping: u64,
}

// The initial state is part of every replay: a Default that reads the clock gives each
// rebuild a different starting point.
#[es::pure]
impl Default for Session {
    fn default() -> Self {
        Session { started: std::time::SystemTime::now(), last_ping: 0 }
    }
}

#[aggregate]
impl Aggregate for Session {
    type Event = SessionEvent;

    fn apply(&mut self, event: &SessionEvent) {
        let SessionEvent::Pinged { at } = event;
        self.last_ping = *at;
    }
}

fn main() {}
