use es::aggregate;

// Every field of every variant is checked.
#[aggregate]
#[derive(Debug, Default)]
pub enum Order {
    #[default]
    Empty,
    Open(Vec<String>, std::cell::Cell<u64>),
    Paid { amount: u64, receipt: Option<std::fs::File> },
}

fn main() {}
