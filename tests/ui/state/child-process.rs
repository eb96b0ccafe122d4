use es::aggregate;

// A child process in the state.
#[aggregate]
#[derive(Debug)]
pub struct Job {
    pub runs: u64,
    pub worker: std::process::Child,
}

fn main() {}
