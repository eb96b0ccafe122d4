//! Properties of folding: incremental equals all-at-once, and any stream that skips,
//! repeats or reorders an event is refused rather than folded.

mod support;

use es::testing::stored_events;
use es::{Loaded, RehydrateError, rehydrate};
use proptest::prelude::*;
use support::{Account, AccountEvent, Note};

fn event() -> impl Strategy<Value = AccountEvent> {
    prop_oneof![
        any::<u32>().prop_map(|amount| AccountEvent::Deposited { amount: u64::from(amount) }),
        ("\\PC{0,12}", any::<u128>(), any::<i128>(), any::<f64>().prop_filter("finite", |f| f.is_finite()))
            .prop_map(|(text, big, small, ratio)| AccountEvent::Noted(Note { text, big, small, ratio, tiny: 0.5 })),
        Just(AccountEvent::Closed),
    ]
}

fn stream() -> impl Strategy<Value = Vec<AccountEvent>> {
    prop::collection::vec(event(), 2..40)
}

fn debug_state(loaded: &Loaded<Account>) -> String {
    format!("{:?} @ {}", loaded.state(), loaded.version())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn folding_incrementally_equals_folding_at_once(events in stream(), split in any::<prop::sample::Index>()) {
        let stored = stored_events::<Account>(&events, 1);
        let all = rehydrate::<Account>(es::testing::TEST_STREAM, stored.clone()).unwrap();

        let cut = split.index(stored.len() + 1);
        let head = rehydrate::<Account>(es::testing::TEST_STREAM, stored[..cut].to_vec()).unwrap();
        let mut resumed = Loaded::from_state(es::testing::TEST_STREAM, head.state().clone(), head.version());
        for event in stored[cut..].iter().cloned() {
            resumed.fold(event).unwrap();
        }
        prop_assert_eq!(debug_state(&all), debug_state(&resumed));
        prop_assert_eq!(all.version(), events.len() as u64);
    }

    #[test]
    fn a_removed_event_is_detected(events in stream(), pick in any::<prop::sample::Index>()) {
        let mut stored = stored_events::<Account>(&events, 1);
        // Removing the last event leaves a valid, shorter stream; any other removal
        // leaves a gap.
        let removed = pick.index(stored.len() - 1);
        stored.remove(removed);
        let error = rehydrate::<Account>(es::testing::TEST_STREAM, stored).unwrap_err();
        let is_gap = matches!(error, RehydrateError::VersionMismatch { expected, found, .. }
            if expected == removed as u64 + 1 && found == removed as u64 + 2);
        prop_assert!(is_gap, "{error}");
    }

    #[test]
    fn a_repeated_event_is_detected(events in stream(), pick in any::<prop::sample::Index>()) {
        let mut stored = stored_events::<Account>(&events, 1);
        let repeated = pick.index(stored.len());
        stored.insert(repeated + 1, stored[repeated].clone());
        let error = rehydrate::<Account>(es::testing::TEST_STREAM, stored).unwrap_err();
        let is_duplicate = matches!(error, RehydrateError::VersionMismatch { expected, found, .. }
            if expected == repeated as u64 + 2 && found == repeated as u64 + 1);
        prop_assert!(is_duplicate, "{error}");
    }

    #[test]
    fn a_reordered_stream_is_detected(events in stream(), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let mut stored = stored_events::<Account>(&events, 1);
        let (a, b) = (a.index(stored.len()), b.index(stored.len()));
        prop_assume!(a != b);
        stored.swap(a, b);
        let error = rehydrate::<Account>(es::testing::TEST_STREAM, stored).unwrap_err();
        prop_assert!(matches!(error, RehydrateError::VersionMismatch { .. }), "{error}");
    }

    #[test]
    fn replay_is_deterministic(events in stream()) {
        es::testing::assert_replay_is_deterministic::<Account>(&events);
    }
}

#[test]
fn errors_name_the_stream_and_versions() {
    let events = [AccountEvent::Deposited { amount: 1 }, AccountEvent::Deposited { amount: 2 }];
    let mut stored = stored_events::<Account>(&events, 1);
    stored[1].stream_version = 7;
    stored[0].stream_id = "account-7".into();
    stored[1].stream_id = "account-7".into();
    let error = rehydrate::<Account>("account-7", stored.clone()).unwrap_err();
    assert_eq!(error.to_string(), "stream account-7: expected version 2, got 7");

    stored[1].stream_version = 2;
    stored[1].event_type = "Teleported".into();
    let error = rehydrate::<Account>("account-7", stored.clone()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "stream account-7, version 2, event type `Teleported`: unknown event type `Teleported`"
    );

    stored[1].event_type = "Deposited".into();
    stored[1].payload = r#"{"amount":"lots"}"#.into();
    let error = rehydrate::<Account>("account-7", stored.clone()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("stream account-7, version 2, event type `Deposited`: payload of event `Deposited`"),
        "{message}"
    );

    stored[1].payload = r#"{"amount":2}"#.into();
    stored[1].schema_version = 3;
    let error = rehydrate::<Account>("account-7", stored.clone()).unwrap_err();
    assert!(error.to_string().contains("stored at schema version 3, newer than version 1"), "{error}");

    stored[1].schema_version = 1;
    stored[1].stream_type = "Ledger".into();
    let error = rehydrate::<Account>("account-7", stored).unwrap_err();
    assert_eq!(error.to_string(), "stream account-7: event at version 2 belongs to stream Ledger/account-7");
}
