use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum OrderEvent {
    Placed { order_id: String, total_cents: u64 },
    Paid { payment_id: String },
    Shipped { tracking: String },
    Cancelled { reason: String },
}

#[aggregate]
#[derive(Debug, Default, PartialEq)]
pub enum Order {
    #[default]
    New,
    Placed {
        total_cents: u64,
    },
    Paid {
        total_cents: u64,
        payment_id: String,
    },
    Shipped {
        tracking: String,
    },
    Cancelled {
        reason: String,
    },
}

#[aggregate]
impl Aggregate for Order {
    type Event = OrderEvent;

    fn apply(&mut self, event: &OrderEvent) {
        let next = match (std::mem::take(self), event) {
            (Self::New, OrderEvent::Placed { total_cents, .. }) => Self::Placed { total_cents: *total_cents },
            (Self::Placed { total_cents }, OrderEvent::Paid { payment_id }) => {
                Self::Paid { total_cents, payment_id: payment_id.clone() }
            }
            (Self::Paid { .. }, OrderEvent::Shipped { tracking }) => Self::Shipped { tracking: tracking.clone() },
            (_, OrderEvent::Cancelled { reason }) => Self::Cancelled { reason: reason.clone() },
            (state, _) => state,
        };
        debug_assert!(
            !matches!(next, Self::New) || matches!(event, OrderEvent::Paid { .. } | OrderEvent::Shipped { .. })
        );
        *self = next;
    }
}

fn main() {
    let mut order = Order::default();
    for event in [
        OrderEvent::Placed { order_id: "o-1".into(), total_cents: 1250 },
        OrderEvent::Paid { payment_id: "p-9".into() },
        OrderEvent::Shipped { tracking: "T-42".into() },
    ] {
        order.apply(&event);
    }
    assert_eq!(order, Order::Shipped { tracking: "T-42".into() });
    order.apply(&OrderEvent::Cancelled { reason: "lost".into() });
    assert!(matches!(order, Order::Cancelled { .. }));
}
