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

pub struct Mailer;

impl Mailer {
    // Not marked `#[es::pure]`: its body is never read.
    pub fn send(items: u32) {
        let _ = std::net::TcpStream::connect("127.0.0.1:25").map(|_| items);
    }
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { quantity, .. } = event;
        self.items += quantity;
        Mailer::send(self.items);
    }
}

fn main() {}
