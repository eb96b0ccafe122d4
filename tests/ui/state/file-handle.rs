use std::fs::File;
use std::io::BufWriter;

use es::aggregate;

// A buffered file in the state: `apply` could write to it, a replay cannot undo that.
#[aggregate]
#[derive(Debug)]
pub struct Ledger {
    pub balance: u64,
    pub sink: BufWriter<File>,
}

fn main() {}
