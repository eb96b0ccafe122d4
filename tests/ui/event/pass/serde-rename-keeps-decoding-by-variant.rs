//! serde's renames change the payload's field names, never which variant a stored
//! type name selects: decoding goes by the variant's position.

use es::Event;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum OrderEvent {
    #[serde(rename = "created", rename_all = "camelCase")]
    OrderCreated { customer_id: u64, line_count: u32 },
    #[event(name = "order.shipped")]
    #[serde(rename = "OrderCreated")]
    OrderShipped { tracking_code: String },
    #[serde(alias = "cancelled")]
    OrderCancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[serde(rename = "PriceSet", rename_all = "SCREAMING_SNAKE_CASE")]
#[event(name = "price.set")]
struct PriceChanged {
    new_price: i64,
}

fn main() {
    let created = OrderEvent::OrderCreated { customer_id: 7, line_count: 2 };
    assert_eq!(created.event_type().name, "OrderCreated");
    let payload = created.encode().unwrap();
    assert_eq!(payload, r#"{"customerId":7,"lineCount":2}"#);
    assert_eq!(OrderEvent::decode("OrderCreated", 1, &payload).unwrap(), created);

    // serde calls this variant `OrderCreated`; `es` stores it as `order.shipped` and
    // still decodes it into the right variant.
    let shipped = OrderEvent::OrderShipped { tracking_code: "XY".into() };
    let payload = shipped.encode().unwrap();
    assert_eq!(payload, r#"{"tracking_code":"XY"}"#);
    assert_eq!(OrderEvent::decode("order.shipped", 1, &payload).unwrap(), shipped);

    let cancelled = OrderEvent::OrderCancelled;
    assert_eq!(OrderEvent::decode("OrderCancelled", 1, &cancelled.encode().unwrap()).unwrap(), cancelled);
    // serde's own names are not type names.
    assert!(OrderEvent::decode("created", 1, &payload).is_err());
    assert!(OrderEvent::decode("cancelled", 1, "null").is_err());

    // deny_unknown_fields still applies to the payload.
    assert!(OrderEvent::decode("order.shipped", 1, r#"{"tracking_code":"XY","extra":1}"#).is_err());

    let price = PriceChanged { new_price: -5 };
    let payload = price.encode().unwrap();
    assert_eq!(payload, r#"{"NEW_PRICE":-5}"#);
    assert_eq!(PriceChanged::decode("price.set", 1, &payload).unwrap(), price);
}
