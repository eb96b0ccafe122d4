use std::collections::{BTreeMap, HashMap};

use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum CartEvent {
    Added { skus: Vec<String> },
}

#[es::aggregate]
#[derive(Debug, Default)]
pub struct Cart {
    pub first: Option<String>,
    pub counts: BTreeMap<String, u32>,
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { skus } = event;
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for sku in skus {
            *counts.entry(sku.as_str()).or_default() += 1;
        }
        // Lookups by key do not depend on the iteration order; the ordered copy is
        // what gets iterated.
        let mut ordered: BTreeMap<&str, u32> = BTreeMap::new();
        for sku in skus {
            if counts.contains_key(sku.as_str()) {
                ordered.insert(sku.as_str(), counts.get(sku.as_str()).copied().unwrap_or(0));
            }
        }
        self.first = ordered.keys().next().map(|sku| (*sku).to_owned());
        for (sku, count) in ordered {
            *self.counts.entry(sku.to_owned()).or_default() += count;
        }
    }
}

fn main() {
    let mut cart = Cart::default();
    cart.apply(&CartEvent::Added { skus: vec!["tea".to_owned(), "cake".to_owned(), "tea".to_owned()] });
    assert_eq!(cart.first.as_deref(), Some("cake"));
    assert_eq!(cart.counts.get("tea"), Some(&2));
}
