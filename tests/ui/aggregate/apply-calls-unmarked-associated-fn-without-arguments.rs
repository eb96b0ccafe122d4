use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum CartEvent {
    Added { sku: String, quantity: u32 },
}

#[es::aggregate]
#[derive(Debug, Default)]
pub struct Cart {
    pub items: u32,
    pub skus: Vec<String>,
}

pub struct Ticket;

impl Ticket {
    // Not marked `#[es::pure]`: its body is never read.
    pub fn next() -> u32 {
        std::fs::read_to_string("/tmp/ticket").map_or(0, |text| text.len() as u32)
    }
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { .. } = event;
        self.items = Ticket::next();
    }
}

fn main() {}
