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

// Not marked `#[es::pure]`: `write!(self, ..)` runs it.
impl std::fmt::Write for Cart {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        std::fs::write("/tmp/cart", text).map_err(|_| std::fmt::Error)
    }
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { sku, .. } = event;
        use std::fmt::Write as _;
        write!(self, "{sku}").unwrap();
    }
}

fn main() {}
