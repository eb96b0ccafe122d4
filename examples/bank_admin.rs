//! The bank's admin binary: the `es` command line with the bank's aggregate
//! registered, so that it can also decode every event, rehydrate every account
//! strictly, check that replays are deterministic, and replay one account.
//!
//! ```sh
//! cargo run --example bank                                   # makes target/es-bank/bank.db
//! cargo run --features cli --example bank_admin -- --db target/es-bank/bank.db verify --decode --determinism
//! cargo run --features cli --example bank_admin -- --db target/es-bank/bank.db replay acc-ada
//! ```
//!
//! In an application this is `src/bin/admin.rs`, with `es = { features = ["cli"] }`.

#[path = "bank/account.rs"]
mod account;

fn main() -> std::process::ExitCode {
    es::cli::App::new().aggregate::<account::Account>().run()
}
