use es::ViewStore;
use serde::{Deserialize, Serialize};

/// Serde and `Default`, but it never said which events change it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct AccountSummary {
    balance: u64,
}

async fn summary(store: &es::MemoryStore) {
    let _ = store.views::<AccountSummary>("account_summaries").load("acc-1").await;
}

fn main() {
    let _ = summary;
}
