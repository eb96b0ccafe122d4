use es::aggregate;

// A raw pointer points outside the state.
#[aggregate]
#[derive(Debug)]
pub struct Cursor {
    pub at: *const u8,
}

fn main() {}
