use es::aggregate;

// A reference borrows from outside the state.
#[aggregate]
#[derive(Debug, Default)]
pub struct Greeting {
    pub text: &'static str,
}

fn main() {}
