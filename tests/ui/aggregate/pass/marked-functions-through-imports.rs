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

mod pricing {
    #[es::pure]
    pub fn fee(quantity: u32) -> u32 {
        quantity / 3
    }

    #[es::pure]
    pub(crate) fn bonus(quantity: u32) -> u32 {
        quantity * 2
    }

    pub mod deep {
        #[es::pure]
        pub fn nested(quantity: u32) -> u32 {
            quantity + 1
        }
    }

    pub use deep::nested as reexported;

    pub struct Mailer;

    #[es::pure]
    impl Mailer {
        pub fn count(items: u32) -> u32 {
            items
        }
    }

    pub trait Score {
        fn score(quantity: u32) -> u32;
    }

    pub struct Flat;

    #[es::pure]
    impl Score for Flat {
        fn score(quantity: u32) -> u32 {
            quantity * 10
        }
    }

    pub struct Wrapper<T>(pub T);

    pub trait Halve {
        fn halve(value: u32) -> u32;
    }

    // A blanket impl: no inherent impl can hold its marker, so none is left.
    #[es::pure]
    impl<T: Copy> Halve for T {
        fn halve(value: u32) -> u32 {
            value / 2
        }
    }

    #[es::pure]
    impl<T: Copy> Wrapper<T> {
        pub fn get(wrapper: &Self) -> T {
            wrapper.0
        }
    }
}

mod globbed {
    #[es::pure]
    pub fn triple(quantity: u32) -> u32 {
        quantity * 3
    }
}

use globbed::*;
use pricing::Mailer as Postman;
use pricing::bonus as extra;
use pricing::fee;
use pricing::{Flat, Score, Wrapper};
use std::mem::take;

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { sku, quantity } = event;
        let q = *quantity;
        self.items += fee(q) + extra(q) + triple(q) + pricing::reexported(q) + crate::pricing::fee(q);
        self.items += pricing::deep::nested(q) + Postman::count(q) + <pricing::Mailer>::count(q);
        self.items += <Flat as Score>::score(q) + Flat::score(q) + Wrapper::<u32>::get(&Wrapper(q));
        self.items += [q].into_iter().map(fee).map(pricing::deep::nested).sum::<u32>();
        #[es::pure]
        fn nested_in_body(quantity: u32) -> u32 {
            quantity - 3
        }
        self.items += nested_in_body(q);
        let mut skus = take(&mut self.skus);
        skus.push(sku.clone());
        self.skus = skus;
    }
}

fn main() {
    let mut cart = Cart::default();
    cart.apply(&CartEvent::Added { sku: "tea".to_owned(), quantity: 3 });
    // fee 1, bonus 6, triple 9, reexported 4, fee 1; nested 4, count 3, count 3;
    // score 30, score 30, get 3; map 2
    assert_eq!(cart.items, 1 + 6 + 9 + 4 + 1 + 4 + 3 + 3 + 30 + 30 + 3 + 2);
    assert_eq!(cart.skus, ["tea"]);
}
