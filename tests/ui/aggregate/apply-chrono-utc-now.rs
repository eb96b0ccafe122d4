use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

// Stands in for the chrono crate: the check is by name.
mod chrono {
    pub struct Utc;
    impl Utc {
        pub fn now() -> u64 {
            0
        }
    }
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
        let _at = chrono::Utc::now();
    }
}

fn main() {}
