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
fn persist(sku: &String) {
    std::fs::write("/tmp/sku", sku).unwrap();
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { sku, .. } = event;
        self.skus.push(sku.clone());
        self.skus.iter().for_each(persist);
    }
}

fn main() {}
