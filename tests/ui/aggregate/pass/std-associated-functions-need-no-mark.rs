use std::collections::{BTreeMap, HashMap};

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

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Money(u64);

impl From<u32> for Money {
    fn from(quantity: u32) -> Self {
        Money(u64::from(quantity))
    }
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { sku, quantity } = event;
        let mut by_sku: BTreeMap<String, u32> = BTreeMap::new();
        let mut lookup: HashMap<&str, u32> = HashMap::new();
        lookup.insert(sku.as_str(), *quantity);
        by_sku.insert(String::from(sku.as_str()), lookup.get(sku.as_str()).copied().unwrap_or_default());
        let mut skus = Vec::with_capacity(1);
        skus.extend(by_sku.keys().cloned());
        let total = u32::saturating_add(u32::checked_mul(*quantity, 2).unwrap_or(u32::MAX), 0);
        let money = Money::from(*quantity).0 + Money::default().0 + <u64 as Default>::default();
        let money: u64 = Iterator::sum([money, u64::from(total)].into_iter());
        let label: String = From::from("x");
        let same = Option::Some(String::clone(&label)).map(|text| text.len()).unwrap_or(0);
        self.skus = skus;
        self.items = u32::try_from(money).unwrap_or(u32::MAX) + u32::try_from(same).unwrap_or(0);
    }
}

fn main() {
    let mut cart = Cart::default();
    cart.apply(&CartEvent::Added { sku: "tea".to_owned(), quantity: 3 });
    assert_eq!(cart.items, 3 + 6 + 1);
    assert_eq!(cart.skus, ["tea"]);
}
