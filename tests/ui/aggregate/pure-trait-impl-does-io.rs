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

pub trait Score {
    fn score(quantity: u32) -> u32;
}

#[es::pure]
impl Score for Cart {
    fn score(quantity: u32) -> u32 {
        std::fs::read_to_string("/tmp/score").map_or(quantity, |text| text.len() as u32)
    }
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { quantity, .. } = event;
        self.items += <Cart as Score>::score(*quantity);
    }
}

fn main() {}
