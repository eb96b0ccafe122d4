//! Old payloads are upcast step by step (v1 → v2 → v3) before decoding, and numbers
//! the upcasters only move around stay bit-exact: integers beyond 64 bits, floats.

use es::{DecodeError, Event, Json, UpcastError};
use serde::{Deserialize, Serialize};

mod upcasters {
    use es::{Json, UpcastError};

    /// Version 1 stored `{"cents": ...}`; version 2 calls it `amount`.
    pub fn rename_cents(mut json: Json) -> Result<Json, UpcastError> {
        let object = json.as_object_mut().ok_or_else(|| UpcastError::new("expected an object"))?;
        object.rename("cents", "amount")?;
        Ok(json)
    }
}

/// Version 3 records the exchange rate, which version 2 payloads did not have.
fn add_rate(mut json: Json) -> Result<Json, UpcastError> {
    let object = json.as_object_mut().ok_or_else(|| UpcastError::new("expected an object"))?;
    object.insert("rate", Json::from(1.0));
    Ok(json)
}

/// Turns a version 1 payload into the tuple variant's current shape.
fn wrap_in_array(json: Json) -> Result<Json, UpcastError> {
    Ok(Json::Array(vec![json, Json::from(0.1)]))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum LedgerEvent {
    #[event(name = "ledger.deposited", version = 3, upcast(1 = upcasters::rename_cents, 2 = add_rate))]
    Deposited { amount: u128, rate: f64 },
    #[event(version = 2, upcast(1 = self::wrap_in_array))]
    Adjusted(i128, f64),
    /// Version 1 payloads were never stored, so there is no step from it.
    #[event(version = 3, upcast(2 = add_rate))]
    Fee { amount: u128, rate: f64 },
}

fn main() {
    // v1 → v2 → v3: both steps run, the u128 survives untouched.
    let v1 = r#"{"cents": 340282366920938463463374607431768211455}"#;
    let event = LedgerEvent::decode("ledger.deposited", 1, v1).unwrap();
    assert_eq!(event, LedgerEvent::Deposited { amount: u128::MAX, rate: 1.0 });

    // v2 → v3: only the second step runs.
    let v2 = r#"{"amount": 340282366920938463463374607431768211454}"#;
    let event = LedgerEvent::decode("ledger.deposited", 2, v2).unwrap();
    assert_eq!(event, LedgerEvent::Deposited { amount: u128::MAX - 1, rate: 1.0 });

    // The current version decodes without upcasting, and floats come back bit-exact.
    for rate in [0.1, 1.0 / 3.0, f64::MIN_POSITIVE, f64::MAX, -0.0, 5e-324] {
        let event = LedgerEvent::Deposited { amount: u128::MAX, rate };
        let payload = event.encode().unwrap();
        let LedgerEvent::Deposited { rate: decoded, .. } =
            LedgerEvent::decode("ledger.deposited", 3, &payload).unwrap()
        else {
            panic!("decoded into the wrong variant")
        };
        assert_eq!(decoded.to_bits(), rate.to_bits());
    }

    // A tuple variant's upcaster, with a negative i128 beyond 64 bits.
    let event = LedgerEvent::decode("Adjusted", 1, "-170141183460469231731687303715884105728").unwrap();
    assert_eq!(event, LedgerEvent::Adjusted(i128::MIN, 0.1));

    // A missing step is a typed error that names it.
    assert!(matches!(
        LedgerEvent::decode("Fee", 1, r#"{"amount": 1}"#),
        Err(DecodeError::NoUpcastPath { stored: 1, missing: 1, .. })
    ));
    assert_eq!(LedgerEvent::decode("Fee", 2, r#"{"amount": 1}"#).unwrap(), LedgerEvent::Fee { amount: 1, rate: 1.0 });

    // An upcaster's refusal is reported with the step it failed at.
    assert!(matches!(LedgerEvent::decode("ledger.deposited", 1, "[1]"), Err(DecodeError::Upcast { from: 1, .. })));
}
