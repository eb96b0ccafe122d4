use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

// Stands in for the time crate: the check is by name.
mod time {
    pub struct OffsetDateTime;
    impl OffsetDateTime {
        pub fn now_utc() -> u64 {
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
        let _at = time::OffsetDateTime::now_utc();
    }
}

fn main() {}
