use es::Event;
use std::sync::OnceLock;

#[derive(Event)]
struct Configured {
    value: OnceLock<String>,
}

fn main() {}
