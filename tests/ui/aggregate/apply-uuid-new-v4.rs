use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

// Stands in for the uuid crate: the check is by name.
mod uuid {
    pub struct Uuid;
    impl Uuid {
        pub fn new_v4() -> Self {
            Uuid
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
        let _id = uuid::Uuid::new_v4();
    }
}

fn main() {}
