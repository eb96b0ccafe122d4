use es::aggregate;

// A function pointer in the state: `(self.tick)()` runs code the check cannot see.
#[aggregate]
#[derive(Debug, Default)]
pub struct Meter {
    pub total: i64,
    pub tick: Option<fn() -> i64>,
}

fn main() {}
