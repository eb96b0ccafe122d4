use es::Event;
use serde::{Deserialize, Serialize};

fn euro() -> String {
    "EUR".to_owned()
}

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    Deposited(u64, #[serde(default = "euro")] String),
}

fn main() {}
