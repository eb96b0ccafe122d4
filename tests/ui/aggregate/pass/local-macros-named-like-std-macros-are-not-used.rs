// Local macros that shadow std's: a handler's `vec!` and `format!` must still be std's.
macro_rules! vec {
    ($($anything:tt)*) => {
        panic!("the local `vec!` ran")
    };
}

macro_rules! format {
    ($($anything:tt)*) => {
        panic!("the local `format!` ran")
    };
}

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

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { sku, quantity } = event;
        self.skus = vec![format!("{sku}x{quantity}")];
        self.items = vec![*quantity; 2].len() as u32;
    }
}

fn main() {
    let mut cart = Cart::default();
    cart.apply(&CartEvent::Added { sku: "tea".to_owned(), quantity: 3 });
    assert_eq!(cart.skus, ["teax3"]);
    assert_eq!(cart.items, 2);
}
