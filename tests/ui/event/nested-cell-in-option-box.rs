use es::Event;
use serde::{Deserialize, Serialize};
use std::cell::Cell;

#[derive(Serialize, Deserialize, Event)]
enum ScoreEvent {
    Scored(u32, Option<Box<Cell<u32>>>),
}

fn main() {}
