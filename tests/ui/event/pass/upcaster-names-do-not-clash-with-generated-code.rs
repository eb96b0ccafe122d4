//! Upcasters and variants may be called whatever the user likes, including names the
//! generated code uses internally; raw identifiers are stored without `r#`.

use es::{Event, Json, UpcastError};
use serde::{Deserialize, Serialize};

fn payload(json: Json) -> Result<Json, UpcastError> {
    Ok(json)
}

fn schema_version(json: Json) -> Result<Json, UpcastError> {
    Ok(json)
}

#[allow(non_camel_case_types)]
#[derive(Debug, PartialEq, Serialize, Deserialize, Event)]
enum Tricky {
    #[event(version = 3, upcast(1 = payload, 2 = schema_version))]
    r#type {
        event_type: String,
        other: u8,
    },
    Other,
}

/// An event with no variant has no type names; decoding always reports an unknown type.
#[derive(Debug, Serialize, Deserialize, Event)]
enum Never {}

fn main() {
    assert_eq!(Tricky::TYPES[0].name, "type");
    let event = Tricky::decode("type", 1, r#"{"event_type":"x","other":1}"#).unwrap();
    assert_eq!(event, Tricky::r#type { event_type: "x".into(), other: 1 });
    assert_eq!(Tricky::decode("Other", 1, "null").unwrap(), Tricky::Other);
    assert!(Never::TYPES.is_empty());
    assert!(Never::decode("Anything", 1, "null").is_err());
}
