use es::aggregate;

// A boxed closure in the state: `(self.on_change)(x)` runs code the check cannot see.
#[aggregate]
pub struct Meter {
    pub total: u64,
    pub on_change: Box<dyn Fn(u64) + Send>,
}

fn main() {}
