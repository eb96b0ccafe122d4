use es::{Aggregate, Event, MemoryStore, Repository, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Event)]
struct Priced {
    cents: u64,
}

#[aggregate]
#[derive(Debug, Default)]
struct Quote {
    total: u64,
}

#[aggregate]
impl Aggregate for Quote {
    type Event = Priced;
    fn apply(&mut self, event: &Priced) {
        self.total += event.cents;
    }
}

async fn price() -> u64 {
    1_250
}

async fn quote(quotes: &Repository<MemoryStore>) {
    let _ = quotes
        .execute("quote-1", |_: &Quote, _ctx| async move {
            let cents = price().await;
            Ok::<_, String>(vec![Priced { cents }])
        })
        .await;
}

fn main() {
    let _ = quote;
}
