use es::aggregate;

// A trait object in the state: its methods can do anything.
#[aggregate]
pub struct Journal {
    pub lines: u64,
    pub out: Box<dyn std::io::Write + Send>,
}

fn main() {}
