use std::cell::{Cell, RefCell};
use std::rc::Rc;

use es::aggregate;

// Refused types are found wherever they are nested, and all at once.
#[aggregate]
#[derive(Debug, Default)]
pub struct Inventory {
    pub lots: Option<Vec<(String, Cell<u64>)>>,
    pub labels: [Option<Box<Rc<str>>>; 2],
    pub history: std::collections::BTreeMap<u64, Vec<RefCell<String>>>,
}

fn main() {}
