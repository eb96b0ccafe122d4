//! A small bank service on the embedded default store (a SQLite file):
//!
//! - withdrawals ask a fraud check (a mocked outside service) before deciding, through
//!   `execute_async`, and record its score in the event, so replays never ask again;
//! - the account screen is a document read model (`es::projection::View`), one JSON
//!   document per account, kept by the store, loaded by key, rebuilt from the events.
//!
//! The service itself (`examples/service/bank.rs`) names no store: this file opens
//! SQLite, and `tests/service_postgres.rs` runs the same service on PostgreSQL.
//! Run it with `cargo run --example service`.

#[path = "service/bank.rs"]
mod bank;

use es::sqlite::SqliteStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("bank.db")).await?;

    let (ada, grace) = bank::story(store.clone()).await?;
    println!(
        "{}: balance {}, {} withdrawal(s), held for review {:?}",
        ada.owner, ada.balance, ada.withdrawals, ada.held_for_review
    );
    println!("{}: balance {}, {} withdrawal(s)", grace.owner, grace.balance, grace.withdrawals);

    // The views are rows of the store's database: any process reads them by key.
    let documents = store
        .read(|c| {
            c.query_row("SELECT COUNT(*) FROM es_views WHERE view = ?1", [bank::SUMMARIES], |r| r.get::<_, i64>(0))
        })
        .await?;
    println!("{documents} account summaries in es_views");
    Ok(())
}
