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

const LIMITS: [u32; 3] = [10, 100, 1000];
const UNIT: &str = "pcs";

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { sku, quantity } = event;
        let limit = LIMITS.get(1).copied().unwrap_or(u32::MAX);
        self.items = (*quantity).min(limit) + UNIT.len() as u32;
        self.skus.push(sku.clone());
    }
}

fn main() {
    let mut cart = Cart::default();
    cart.apply(&CartEvent::Added { sku: "tea".to_owned(), quantity: 3 });
    assert_eq!(cart.items, 6);
}
