//! Snapshots never change the state: with a snapshot after every event, the state a
//! command returns equals, bit for bit, the state a later load rebuilds, even when the
//! state comes to hold floats JSON cannot carry (NaN, infinities), on the in-memory
//! and SQLite stores. (The conformance suite checks fixed cases on every backend,
//! PostgreSQL included.)

mod support;

use std::convert::Infallible;

use es::{EventStore, Repository};
use proptest::prelude::*;
use support::{Gauge, GaugeEvent};

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(1.0),
        Just(-1.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        any::<f64>().prop_filter("events hold finite floats", |f| f.is_finite()),
    ]
}

fn readings() -> impl Strategy<Value = Vec<(f64, f64)>> {
    prop::collection::vec((float(), float()), 1..12)
}

async fn state_after_command_is_state_after_load<S: EventStore>(store: S, readings: &[(f64, f64)]) {
    let repository = Repository::new(store);
    for &(numerator, denominator) in readings {
        let committed = repository
            .execute("gauge", |_: &Gauge, _| Ok::<_, Infallible>(vec![GaugeEvent::Measured { numerator, denominator }]))
            .await
            .unwrap();
        let loaded = repository.load::<Gauge>("gauge").await.unwrap();
        assert_eq!(loaded.state().bits(), committed.state.bits(), "after {numerator}/{denominator}");
        assert_eq!(loaded.version(), committed.version);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn memory_snapshots_keep_the_state_bit_for_bit(readings in readings()) {
        runtime().block_on(state_after_command_is_state_after_load(es::MemoryStore::new(), &readings));
    }

    #[test]
    fn sqlite_snapshots_keep_the_state_bit_for_bit(readings in readings()) {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = es::sqlite::SqliteStore::open(dir.path().join("events.db")).await.unwrap();
            state_after_command_is_state_after_load(store, &readings).await;
        });
    }
}
