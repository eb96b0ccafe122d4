use std::cell::Cell;

use es::aggregate;

// A `Cell` changes behind `&self`.
#[aggregate]
#[derive(Debug, Default)]
pub struct Counter {
    pub total: Cell<u64>,
}

fn main() {}
