use std::collections::HashMap;

use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum StockEvent {
    Received { lines: Vec<(String, u32)> },
    Shipped { sku: String, quantity: u32 },
    Counted { sku: String, on_hand: u32 },
}

#[aggregate]
#[derive(Debug, Default)]
pub struct Warehouse {
    on_hand: HashMap<String, u32>,
    shipped_total: u64,
    discrepancies: Vec<String>,
}

#[aggregate]
impl Aggregate for Warehouse {
    type Event = StockEvent;

    fn apply(&mut self, event: &StockEvent) {
        match event {
            StockEvent::Received { lines } => {
                let received = lines.iter().filter(|(_, quantity)| *quantity > 0);
                for (sku, quantity) in received {
                    *self.on_hand.entry(sku.clone()).or_insert(0) += quantity;
                }
            }
            StockEvent::Shipped { sku, quantity } => {
                if let Some(stock) = self.on_hand.get_mut(sku) {
                    *stock = stock.saturating_sub(*quantity);
                }
                self.shipped_total += u64::from(*quantity);
            }
            StockEvent::Counted { sku, on_hand } => {
                let known = self.on_hand.get(sku).copied().unwrap_or_default();
                if known != *on_hand {
                    self.discrepancies.push(format!("{sku}: {known} != {on_hand}"));
                }
                self.on_hand.insert(sku.clone(), *on_hand);
            }
        }
    }
}

impl Warehouse {
    fn total(&self) -> u32 {
        self.on_hand.values().copied().fold(0, |sum, quantity| sum + quantity)
    }
}

fn main() {
    let mut warehouse = Warehouse::default();
    for event in [
        StockEvent::Received { lines: vec![("bolt".into(), 10), ("nut".into(), 20), ("gear".into(), 0)] },
        StockEvent::Shipped { sku: "bolt".into(), quantity: 4 },
        StockEvent::Counted { sku: "nut".into(), on_hand: 19 },
    ] {
        warehouse.apply(&event);
    }
    assert_eq!(warehouse.total(), 25);
    assert_eq!(warehouse.shipped_total, 4);
    assert_eq!(warehouse.discrepancies, ["nut: 20 != 19"]);
    assert!(!warehouse.on_hand.contains_key("gear"));
}
