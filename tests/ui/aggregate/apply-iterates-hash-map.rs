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
        // The first key depends on the process's random hasher seed.
        self.first = counts.keys().next().map(|sku| (*sku).to_owned());
    }
}

fn main() {}
