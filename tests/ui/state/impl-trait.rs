use es::aggregate;

// `impl Trait` is no field type, but it is refused as such before rustc says so.
#[aggregate]
pub struct Journal {
    pub lines: u64,
    pub next: impl Iterator<Item = u64>,
}

fn main() {}
