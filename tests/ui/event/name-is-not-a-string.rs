use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(name = account.opened)]
    Opened { owner: String },
}

fn main() {}
