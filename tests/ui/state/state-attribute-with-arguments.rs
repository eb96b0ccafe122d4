use es::aggregate;

// The state attribute takes no arguments; they go on the impl.
#[aggregate(snapshot(version = 1))]
#[derive(Debug, Default)]
pub struct Counter {
    pub total: u64,
}

fn main() {}
