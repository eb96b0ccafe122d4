//! An enum is one event type per variant, in declaration order; a variant's payload
//! is its content alone, without serde's variant tag.

use es::{Event, EventType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(name = "account.opened", version = 2)]
    Opened {
        owner: String,
    },
    Deposited(u64),
    Moved(String, String),
    Frozen,
    #[event(name = "account.closed")]
    Closed {},
}

fn main() {
    assert_eq!(
        AccountEvent::TYPES,
        &[
            EventType::new("account.opened", 2),
            EventType::new("Deposited", 1),
            EventType::new("Moved", 1),
            EventType::new("Frozen", 1),
            EventType::new("account.closed", 1),
        ]
    );

    let cases = [
        (AccountEvent::Opened { owner: "ana".into() }, 0, r#"{"owner":"ana"}"#),
        (AccountEvent::Deposited(u64::MAX), 1, "18446744073709551615"),
        (AccountEvent::Moved("a".into(), "b".into()), 2, r#"["a","b"]"#),
        (AccountEvent::Frozen, 3, "null"),
        (AccountEvent::Closed {}, 4, "{}"),
    ];
    for (event, index, expected) in cases {
        let event_type = event.event_type();
        assert!(std::ptr::eq(event_type, &AccountEvent::TYPES[index]));
        let payload = event.encode().unwrap();
        assert_eq!(payload, expected);
        let decoded = AccountEvent::decode(event_type.name, event_type.version, &payload).unwrap();
        assert_eq!(decoded, event);
    }

    // A payload decodes into the variant its name selects, even when another variant
    // has the same shape.
    #[derive(Debug, PartialEq, Serialize, Deserialize, Event)]
    enum Counter {
        Incremented(u32),
        Decremented(u32),
    }
    assert_eq!(Counter::decode("Decremented", 1, "3").unwrap(), Counter::Decremented(3));
    assert_eq!(Counter::decode("Incremented", 1, "3").unwrap(), Counter::Incremented(3));
    assert!(Counter::decode("Reset", 1, "null").is_err());
}
