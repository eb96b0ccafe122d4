use std::sync::{Arc, Mutex, RwLock};

use es::aggregate;

// A shared lock: any other holder of the `Arc` changes the state without an event.
#[aggregate]
#[derive(Debug, Default)]
pub struct Basket {
    pub shared: Arc<RwLock<Vec<String>>>,
    pub counter: Arc<Mutex<u64>>,
}

fn main() {}
