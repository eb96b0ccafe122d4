use std::rc::Rc;

use es::aggregate;

// `Rc` shares the value with code outside the state.
#[aggregate]
#[derive(Debug, Default)]
pub struct Basket {
    pub items: Rc<Vec<String>>,
}

fn main() {}
