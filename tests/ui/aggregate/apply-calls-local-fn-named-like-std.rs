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

// Named like `std::mem::take`, but not it.
fn take(items: &mut Vec<String>) -> Vec<String> {
    std::fs::write("/tmp/take", items.len().to_string()).unwrap();
    std::mem::take(items)
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { sku, .. } = event;
        let mut old = take(&mut self.skus);
        old.push(sku.clone());
        self.skus = old;
    }
}

fn main() {}
