//! A small bank service on the embedded default store (a SQLite file):
//!
//! - withdrawals ask a fraud check (a mocked outside service) before deciding, through
//!   `execute_async`, and record its score in the event, so replays never ask again;
//! - the account screen is a document read model (`es::projection::View`), one JSON
//!   document per account, kept by the store, loaded by key, rebuilt from the events.
//!
//! The service itself (`examples/service/bank.rs`) names no store: this file opens
//! SQLite, and `tests/service_postgres.rs` runs the same service on PostgreSQL.
//!
//! Then, on the same store: a deposit retried under one idempotency key counts once;
//! a read waits until the account view includes a write (read-your-writes); and a
//! mailer outside the database follows the log as a durable subscription.
//! Run it with `cargo run --example service`.

#[path = "service/bank.rs"]
mod bank;

use std::time::Duration;

use es::projection::ViewStore;
use es::sqlite::SqliteStore;
use futures_util::StreamExt;

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

    // A client timed out and sends its deposit again: under one idempotency key it
    // counts once, and the retry gets the first outcome without deciding again.
    let repository = es::Repository::new(store.clone());
    let deposit = |_: &bank::Account, _: &es::Context<'_>| {
        Ok::<_, bank::BankError>(vec![bank::AccountEvent::Deposited { amount: 40 }])
    };
    let first = repository.execute_once("acc-ada", "request-7", deposit).await?;
    let retry = repository.execute_once("acc-ada", "request-7", deposit).await?;
    println!(
        "request-7 sent twice: appended once at version {}, the retry repeated it: {}",
        first.version, retry.repeated
    );

    // Read-your-writes: a handler that does not run the view waits until the view's
    // checkpoint has passed the deposit, then reads a document that includes it.
    let summaries = store.views::<bank::AccountSummary>(bank::SUMMARIES);
    let cursor = first.cursor().expect("the deposit was recorded");
    let view = format!("view:{}", bank::SUMMARIES);
    let (caught_up, waited) =
        tokio::join!(summaries.catch_up(), store.wait_for_projection(&view, cursor, Duration::from_secs(5)));
    caught_up?;
    waited?;
    let ada = summaries.load("acc-ada").await?.expect("Ada's summary");
    println!("after the wait, Ada's summary shows the deposit: balance {}", ada.balance);

    // A mailer outside the database follows the deposits as a durable subscription:
    // one process at a time holds it, and a restart resumes after the last `ack`.
    let mut mailer =
        es::subscription::durable(&store, "deposit-mailer", "example").event_type("Deposited").start().await?;
    let mut handled = 0;
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(200), mailer.next()).await {
        let event = event?;
        handled += 1; // here: send the mail, then acknowledge it
        mailer.ack(event.cursor).await?;
    }
    println!("the mailer handled {handled} deposits and acknowledged each");
    mailer.release().await?;
    Ok(())
}
