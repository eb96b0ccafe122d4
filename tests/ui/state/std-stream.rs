use es::aggregate;

// A standard stream in the state: `write!(self.out, ..)` in `apply` prints on every replay.
#[aggregate]
#[derive(Debug)]
pub struct Ledger {
    pub balance: u64,
    pub out: std::io::Stdout,
}

fn main() {}
