//! What `#[aggregate]` does with an impure handler, and the pure way to write it.
//!
//! A handler that stamps the state with the clock gives a different state on every
//! replay. This does not compile:
//!
//! ```text
//! #[aggregate]
//! impl Aggregate for Cart {
//!     type Event = CartEvent;
//!
//!     fn apply(&mut self, event: &CartEvent) {
//!         let CartEvent::Added { quantity, .. } = event;
//!         self.items += quantity;
//!         self.updated_at = Some(std::time::SystemTime::now());
//!     }
//! }
//! ```
//!
//! ```text
//! error: `std::time::SystemTime::now` (`SystemTime` is recognised by its name) reads the
//!        clock: a replay runs later, so it would rebuild a different state; capture the
//!        time into the event when the command is decided (inject an `es::Clock`), or
//!        override `apply_recorded` and read `recorded.occurred_at()`
//!   --> examples/impure_handler.rs
//!    |
//!    |         self.updated_at = Some(std::time::SystemTime::now());
//!    |                                ^^^^^^^^^^^^^^^^^^^^^^^^^^
//! ```
//!
//! Below, the same state is kept purely: the time comes from the envelope of the
//! recorded event. Run it with `cargo run --example impure_handler`.

use es::testing::{assert_replay_is_deterministic, given};
use es::{Aggregate, Event, Recorded, Timestamp, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum CartEvent {
    Added { sku: String, quantity: u32 },
}

#[aggregate]
#[derive(Debug, Default, PartialEq)]
struct Cart {
    items: u32,
    updated_at: Option<Timestamp>,
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;

    fn apply(&mut self, event: &CartEvent) {
        let CartEvent::Added { quantity, .. } = event;
        self.items += quantity;
    }

    // The recorded time is the only time an aggregate may know.
    fn apply_recorded(&mut self, recorded: &Recorded<CartEvent>) {
        self.apply(recorded.event());
        self.updated_at = Some(recorded.occurred_at());
    }
}

fn main() {
    let events =
        [CartEvent::Added { sku: "tea".into(), quantity: 2 }, CartEvent::Added { sku: "cup".into(), quantity: 1 }];
    given::<Cart>(events.clone())
        .when(|_, _| Ok::<_, String>(vec![]))
        .then_state(|cart| println!("{} items, updated at {:?}", cart.items, cart.updated_at.map(|t| t.to_string())));
    assert_replay_is_deterministic::<Cart>(&events);
    println!("folding the same events twice gives the same cart");
}
