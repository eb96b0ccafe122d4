use std::cell::OnceCell;

use es::aggregate;

// A lazily initialised value is filled in outside any event.
#[aggregate]
#[derive(Debug, Default)]
pub struct Profile {
    pub name: OnceCell<String>,
    pub cached: std::sync::OnceLock<u64>,
}

fn main() {}
