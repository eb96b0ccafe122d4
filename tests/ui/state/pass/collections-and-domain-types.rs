use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum ShelfEvent {
    Stocked { sku: String, quantity: u32 },
}

/// A user domain type: needs no annotation (its contents are not seen).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Money {
    pub cents: i64,
}

#[aggregate]
#[derive(Debug, Default)]
pub struct Shelf {
    stock: HashMap<String, u32>,
    by_quantity: BTreeMap<u32, BTreeSet<String>>,
    seen: HashSet<String>,
    recent: VecDeque<String>,
    label: Option<Box<String>>,
    parts: Vec<(String, [u8; 4])>,
    name: Arc<str>,
    tags: Arc<Vec<String>>,
    value: Money,
    history: Option<Box<Vec<Money>>>,
}

#[aggregate]
impl Aggregate for Shelf {
    type Event = ShelfEvent;

    fn apply(&mut self, event: &ShelfEvent) {
        let ShelfEvent::Stocked { sku, quantity } = event;
        *self.stock.entry(sku.clone()).or_default() += quantity;
        self.by_quantity.entry(*quantity).or_default().insert(sku.clone());
        self.seen.insert(sku.clone());
        self.recent.push_back(sku.clone());
        self.label = Some(Box::new(sku.clone()));
        self.parts.push((sku.clone(), [0; 4]));
        self.name = Arc::from(sku.as_str());
        self.value.cents += i64::from(*quantity);
        self.history.get_or_insert_with(Default::default).push(self.value);
        let _ = &self.tags;
    }
}

fn main() {
    let mut shelf = Shelf::default();
    shelf.apply(&ShelfEvent::Stocked { sku: "a".into(), quantity: 2 });
    assert_eq!(shelf.stock["a"], 2);
    assert_eq!(&*shelf.name, "a");
}
