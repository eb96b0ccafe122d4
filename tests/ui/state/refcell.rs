use es::aggregate;

// A `RefCell` changes behind `&self`.
#[aggregate]
#[derive(Debug, Default)]
pub struct Counter {
    pub seen: std::cell::RefCell<Vec<u64>>,
}

fn main() {}
