use std::net::TcpStream;

use es::aggregate;

// A socket in the state.
#[aggregate]
#[derive(Debug)]
pub struct Feed {
    pub seen: u64,
    pub upstream: TcpStream,
}

fn main() {}
