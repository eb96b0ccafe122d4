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

pub trait Audited {
    fn audited_quantity(&self) -> u32;
}

// Not marked `#[es::pure]`: its body is never read.
impl Audited for CartEvent {
    fn audited_quantity(&self) -> u32 {
        let CartEvent::Added { quantity, .. } = self;
        std::fs::write("/tmp/audit", quantity.to_string()).unwrap();
        *quantity
    }
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        self.items += event.audited_quantity();
    }
}

fn main() {}
