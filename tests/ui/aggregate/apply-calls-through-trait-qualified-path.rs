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

pub trait Notify {
    fn notify(items: u32);
}

pub struct Mailer;

// Not marked `#[es::pure]`: its body is never read.
impl Notify for Mailer {
    fn notify(items: u32) {
        std::fs::write("/tmp/mail", items.to_string()).unwrap();
    }
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { quantity, .. } = event;
        self.items += quantity;
        <Mailer as Notify>::notify(self.items);
    }
}

fn main() {}
