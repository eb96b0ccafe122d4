use es::{Aggregate, Recorded, Timestamp, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum SubscriptionEvent {
    Started { plan: String },
    Renewed,
}

#[aggregate]
#[derive(Debug, Default)]
pub struct Subscription {
    plan: String,
    renewals: u32,
    last_change: Option<Timestamp>,
}

#[aggregate]
impl Aggregate for Subscription {
    type Event = SubscriptionEvent;

    fn apply(&mut self, event: &SubscriptionEvent) {
        match event {
            SubscriptionEvent::Started { plan } => self.plan.clone_from(plan),
            SubscriptionEvent::Renewed => self.renewals += 1,
        }
    }

    // The recorded time is the only time an aggregate may know: it was captured when the
    // command was decided and is the same on every replay.
    fn apply_recorded(&mut self, recorded: &Recorded<SubscriptionEvent>) {
        self.apply(recorded.event());
        self.last_change = Some(recorded.occurred_at());
    }
}

fn main() {
    let events = [SubscriptionEvent::Started { plan: "pro".into() }, SubscriptionEvent::Renewed];
    let mut subscription = Subscription::default();
    for stored in es::testing::stored_events::<Subscription>(&events, 1) {
        let recorded = stored.decode::<SubscriptionEvent>().expect("decodes");
        subscription.apply_recorded(&recorded);
    }
    assert_eq!(subscription.plan, "pro");
    assert_eq!(subscription.renewals, 1);
    assert_eq!(subscription.last_change, Some(es::testing::TEST_TIME));
}
