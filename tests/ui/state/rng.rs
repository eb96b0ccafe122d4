// Stands in for the rand crate: the check is by name.
mod rand {
    pub mod rngs {
        #[derive(Debug, Default)]
        pub struct StdRng;
    }
}

use es::aggregate;

// A random number generator draws other numbers on every replay.
#[aggregate]
#[derive(Debug, Default)]
pub struct Lottery {
    pub draws: Vec<u32>,
    pub rng: rand::rngs::StdRng,
}

fn main() {}
