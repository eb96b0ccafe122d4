//! serde attributes that keep every field recorded are the user's business: `with`,
//! `serialize_with`/`deserialize_with`, `flatten`, `rename`, `alias`, `transparent`,
//! `deny_unknown_fields`.

use es::Event;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod as_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

fn upper<S: Serializer>(value: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&value.to_uppercase())
}

fn lower<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(String::deserialize(deserializer)?.to_lowercase())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Address {
    street: String,
    city: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
struct CustomerId(u64);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[serde(deny_unknown_fields)]
enum CustomerEvent {
    Registered {
        id: CustomerId,
        #[serde(with = "as_string")]
        credit: u128,
        #[serde(serialize_with = "upper", deserialize_with = "lower")]
        code: String,
        #[serde(rename = "mail", alias = "email")]
        email_address: String,
        tags: std::collections::BTreeMap<String, Vec<Option<u8>>>,
    },
    Moved {
        id: CustomerId,
        #[serde(flatten)]
        address: Address,
    },
    Renamed(#[serde(with = "as_string")] u128),
}

fn main() {
    let registered = CustomerEvent::Registered {
        id: CustomerId(9),
        credit: u128::MAX,
        code: "vip".into(),
        email_address: "a@b.c".into(),
        tags: [("x".to_owned(), vec![Some(1), None])].into(),
    };
    let payload = registered.encode().unwrap();
    assert_eq!(
        payload,
        r#"{"id":9,"credit":"340282366920938463463374607431768211455","code":"VIP","mail":"a@b.c","tags":{"x":[1,null]}}"#
    );
    assert_eq!(CustomerEvent::decode("Registered", 1, &payload).unwrap(), registered);

    let moved = CustomerEvent::Moved {
        id: CustomerId(9),
        address: Address { street: "Main St 1".into(), city: "Ghent".into() },
    };
    let payload = moved.encode().unwrap();
    assert_eq!(payload, r#"{"id":9,"street":"Main St 1","city":"Ghent"}"#);
    assert_eq!(CustomerEvent::decode("Moved", 1, &payload).unwrap(), moved);

    let renamed = CustomerEvent::Renamed(1);
    assert_eq!(renamed.encode().unwrap(), r#""1""#);
    assert_eq!(CustomerEvent::decode("Renamed", 1, r#""1""#).unwrap(), renamed);
}
