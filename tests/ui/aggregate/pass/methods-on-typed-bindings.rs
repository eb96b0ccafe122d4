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

#[es::pure]
impl CartEvent {
    fn quantity(&self) -> u32 {
        match self {
            CartEvent::Added { quantity, .. } => *quantity,
        }
    }
}

#[es::pure]
impl Cart {
    fn bump(&mut self, by: u32) {
        self.items += by;
    }
}

#[es::pure]
fn add(cart: &mut Cart, quantity: u32) {
    cart.bump(quantity);
}

#[es::pure]
impl std::fmt::Write for Cart {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.skus.push(text.to_owned());
        Ok(())
    }
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        use std::fmt::Write as _;
        add(self, event.quantity());
        let twice = |cart: &mut Self, by: u32| {
            cart.bump(by);
            cart.bump(by);
        };
        twice(self, 1);
        let CartEvent::Added { sku, .. } = event;
        write!(self, "{sku}").unwrap();
        let copy = event.clone();
        self.items += copy.quantity();
    }
}

fn main() {
    let mut cart = Cart::default();
    cart.apply(&CartEvent::Added { sku: "tea".to_owned(), quantity: 3 });
    assert_eq!(cart.items, 3 + 2 + 3);
    assert_eq!(cart.skus, ["tea"]);
}
