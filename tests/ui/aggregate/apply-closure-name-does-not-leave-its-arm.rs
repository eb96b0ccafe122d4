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

// Not marked `#[es::pure]`: its body is never read.
fn clamp(quantity: u32) -> u32 {
    std::fs::write("/tmp/clamp", quantity.to_string()).unwrap();
    quantity
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        match event {
            CartEvent::Added { quantity, sku } if sku.is_empty() => {
                let clamp = |quantity: u32| quantity.min(10);
                self.items += clamp(*quantity);
            }
            CartEvent::Added { quantity, .. } => self.items += clamp(*quantity),
        }
    }
}

fn main() {}
