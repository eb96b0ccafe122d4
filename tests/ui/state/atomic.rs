use std::sync::atomic::AtomicU64;

use es::aggregate;

// Atomics change behind `&self`, from any thread.
#[aggregate]
#[derive(Debug, Default)]
pub struct Counter {
    pub total: AtomicU64,
    pub open: std::sync::atomic::AtomicBool,
}

fn main() {}
