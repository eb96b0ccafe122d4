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

mod my {
    macro_rules! vec {
        ($($item:expr),*) => {{
            std::fs::write("/tmp/vec", "").unwrap();
            std::vec::Vec::from([$($item),*])
        }};
    }
    pub(crate) use vec;
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { sku, .. } = event;
        self.skus = my::vec![sku.clone()];
    }
}

fn main() {}
