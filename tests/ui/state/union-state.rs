use es::aggregate;

// A union's active field is known only to the code that wrote it.
#[aggregate]
pub union Raw {
    pub int: u64,
    pub float: f64,
}

fn main() {}
