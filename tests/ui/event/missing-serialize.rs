use es::Event;
use serde::Deserialize;

#[derive(Deserialize, Event)]
enum AccountEvent {
    Opened { owner: String },
}

fn main() {}
