use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[es::pure]
fn bonus(quantity: u32) -> u32 {
    quantity / divisor()
}

fn divisor() -> u32 {
    std::env::var("DIVISOR").map_or(10, |value| value.len() as u32)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum CartEvent {
    Added { sku: String, quantity: u32 },
}

#[aggregate]
#[derive(Debug, Default)]
pub struct Cart {
    pub items: u32,
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { quantity, .. } = event;
        self.items += quantity;
        self.items += bonus(*quantity);
    }
}

fn main() {}
