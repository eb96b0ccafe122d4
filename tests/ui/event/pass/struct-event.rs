//! A struct is one event type: its name defaults to the struct's, its version to 1.

use es::{DecodeError, Event, EventType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
struct AccountOpened {
    owner: String,
    limit: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "account.closed", version = 2)]
struct AccountClosed {
    reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
struct Ping;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
struct Amount(u64);

fn round_trip<E: Event + PartialEq + std::fmt::Debug>(event: &E) -> String {
    let payload = event.encode().unwrap();
    let event_type = event.event_type();
    let decoded = E::decode(event_type.name, event_type.version, &payload).unwrap();
    assert_eq!(&decoded, event);
    payload
}

fn main() {
    assert_eq!(AccountOpened::TYPES, &[EventType::new("AccountOpened", 1)]);
    assert_eq!(AccountClosed::TYPES, &[EventType::new("account.closed", 2)]);

    let opened = AccountOpened { owner: "Zoë 🦀".into(), limit: u64::MAX };
    assert_eq!(opened.event_type(), &AccountOpened::TYPES[0]);
    assert_eq!(round_trip(&opened), r#"{"owner":"Zoë 🦀","limit":18446744073709551615}"#);

    let closed = AccountClosed { reason: "moved \"abroad\"\n".into() };
    assert_eq!(closed.event_type().name, "account.closed");
    round_trip(&closed);

    assert_eq!(round_trip(&Ping), "null");
    assert_eq!(round_trip(&Amount(7)), "7");

    // The stored name selects the type; anything else is a typed error, not a panic.
    assert!(matches!(
        AccountOpened::decode("AccountClosed", 1, "{}"),
        Err(DecodeError::UnknownType { event_type }) if event_type == "AccountClosed"
    ));
    // A version newer than the code's is refused rather than misread.
    assert!(matches!(
        AccountClosed::decode("account.closed", 3, r#"{"reason":"x"}"#),
        Err(DecodeError::NewerVersion { stored: 3, current: 2, .. })
    ));
    // An older version without an upcaster names the missing step.
    assert!(matches!(
        AccountClosed::decode("account.closed", 1, r#"{"reason":"x"}"#),
        Err(DecodeError::NoUpcastPath { stored: 1, missing: 1, .. })
    ));
    // A payload of the wrong shape is a typed error too.
    assert!(matches!(AccountOpened::decode("AccountOpened", 1, r#"{"owner":1}"#), Err(DecodeError::Payload { .. })));
}
