//! The service of `examples/service.rs`, unchanged, on PostgreSQL (feature `postgres`;
//! needs the server, see the README): only the store is constructed differently.

mod pg;

#[path = "../examples/service/bank.rs"]
mod bank;

#[tokio::test]
async fn the_example_service_runs_unchanged_on_postgres() {
    let store = pg::fresh_store().await;
    let (ada, grace) = bank::story(store.clone()).await.unwrap();
    assert_eq!((ada.owner.as_str(), ada.balance, ada.held_for_review.as_slice()), ("Ada", 2_400, &[1_500][..]));
    assert_eq!((grace.owner.as_str(), grace.balance), ("Grace", 50));

    // Another process (another store value on its own pool) reads the same views.
    let elsewhere = pg::store_with_prefix(&store.table("")).await;
    let summaries = es::ViewStore::views::<bank::AccountSummary>(&elsewhere, bank::SUMMARIES);
    assert_eq!(summaries.load("acc-ada").await.unwrap(), Some(ada));
    pg::drop_tables(&store).await;
}
