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
impl Cart {
    fn recount(&mut self) {
        self.items = self.items.min(1000);
    }

    fn double(quantity: &u32) -> u32 {
        quantity * 2
    }
}

#[es::pure]
fn remember(skus: &mut Vec<String>, sku: &String) {
    skus.push(sku.clone());
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { sku, quantity } = event;
        <Self>::recount(self);
        Self::recount(self);
        Cart::recount(self);
        (*self).recount();
        (&mut *self).recount();
        (self).recount();
        let cart = &mut *self;
        cart.recount();
        cart.items += [*quantity].iter().map(Self::double).sum::<u32>();
        let keep = remember;
        keep(&mut self.skus, sku);
        match quantity {
            0 => {
                let remember = |_: &mut Vec<String>, _: &String| {};
                remember(&mut self.skus, sku);
            }
            _ => remember(&mut self.skus, sku),
        }
    }
}

fn main() {
    let mut cart = Cart::default();
    cart.apply(&CartEvent::Added { sku: "tea".to_owned(), quantity: 3 });
    assert_eq!(cart.items, 6);
    assert_eq!(cart.skus, ["tea", "tea"]);
}
