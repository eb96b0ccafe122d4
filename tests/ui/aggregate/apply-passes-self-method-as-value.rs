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

impl Cart {
    // Not marked `#[es::pure]`: its body is never read.
    fn audit(sku: &String) -> usize {
        std::fs::write("/tmp/audit", sku).unwrap();
        sku.len()
    }
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { sku, .. } = event;
        self.skus.push(sku.clone());
        self.items = self.skus.iter().map(Self::audit).sum::<usize>() as u32;
    }
}

fn main() {}
