use std::collections::BTreeMap;

use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum CartEvent {
    #[event(name = "cart.item_added")]
    ItemAdded {
        sku: String,
        quantity: u32,
    },
    ItemRemoved {
        sku: String,
    },
    Cleared,
    CheckedOut,
}

#[aggregate]
#[derive(Debug, Default, PartialEq)]
pub struct Cart {
    lines: BTreeMap<String, u32>,
    checked_out: bool,
    removed: Vec<String>,
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        match event {
            CartEvent::ItemAdded { sku, quantity } => {
                *self.lines.entry(sku.clone()).or_default() += quantity;
            }
            CartEvent::ItemRemoved { sku } => {
                if self.lines.remove(sku).is_some() {
                    self.removed.push(sku.clone());
                }
            }
            CartEvent::Cleared => {
                let old = std::mem::take(&mut self.lines);
                self.removed.extend(old.into_keys());
            }
            CartEvent::CheckedOut => self.checked_out = true,
        }
    }
}

fn main() {
    let mut cart = Cart::default();
    for event in [
        CartEvent::ItemAdded { sku: "apple".into(), quantity: 2 },
        CartEvent::ItemAdded { sku: "pear".into(), quantity: 1 },
        CartEvent::ItemAdded { sku: "apple".into(), quantity: 3 },
        CartEvent::ItemRemoved { sku: "pear".into() },
        CartEvent::CheckedOut,
    ] {
        cart.apply(&event);
    }
    assert_eq!(cart.lines.get("apple"), Some(&5));
    assert_eq!(cart.removed, ["pear"]);
    assert!(cart.checked_out);
    assert_eq!(Cart::stream_type(), "Cart");
}
