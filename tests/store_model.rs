//! Store semantics against a simple model: random appends with right and wrong
//! expected versions, then reads, on every backend.

mod support;

use es::{Cursor, EventStore, ExpectedVersion, Metadata, NewEvent, SequentialIds, Timestamp};
use proptest::prelude::*;
use support::AccountEvent;

#[derive(Debug, Clone)]
enum Expect {
    Any,
    NoStream,
    Current,
    Off(i8),
}

#[derive(Debug, Clone)]
struct Append {
    stream: usize,
    expect: Expect,
    events: u8,
}

fn append() -> impl Strategy<Value = Append> {
    let expect = prop_oneof![
        Just(Expect::Any),
        Just(Expect::NoStream),
        Just(Expect::Current),
        Just(Expect::Current),
        (-2i8..=2).prop_filter("off by something", |d| *d != 0).prop_map(Expect::Off),
    ];
    (0usize..3, expect, 0u8..4).prop_map(|(stream, expect, events)| Append { stream, expect, events })
}

const STREAMS: [&str; 3] = ["s-0", "s-1", "s-2"];

/// Runs the operations on `store` and on the model, comparing every outcome.
async fn check<S: EventStore>(store: S, ops: Vec<Append>) -> Result<(), TestCaseError> {
    let ids = SequentialIds::new();
    let mut versions = [0u64; 3];
    let mut log: Vec<(usize, u64)> = Vec::new();
    let mut amount = 0;
    for op in ops {
        let current = versions[op.stream];
        let expected = match op.expect {
            Expect::Any => ExpectedVersion::Any,
            Expect::NoStream => ExpectedVersion::NoStream,
            Expect::Current => ExpectedVersion::Exact(current),
            Expect::Off(delta) => ExpectedVersion::Exact(current.saturating_add_signed(i64::from(delta))),
        };
        let events: Vec<NewEvent> = (0..op.events)
            .map(|_| {
                amount += 1;
                NewEvent::encode(
                    &AccountEvent::Deposited { amount },
                    es::IdSource::next_id(&ids),
                    Timestamp::EPOCH,
                    Metadata::default(),
                )
                .unwrap()
            })
            .collect();
        let outcome = store.append("Account", STREAMS[op.stream], expected, events).await;
        if expected.matches(current) {
            let appended = outcome.map_err(|e| TestCaseError::fail(format!("{op:?} failed: {e}")))?;
            let new = current + u64::from(op.events);
            prop_assert_eq!(appended.version, new);
            prop_assert_eq!(appended.cursors.len(), usize::from(op.events));
            log.extend((current + 1..=new).map(|v| (op.stream, v)));
            versions[op.stream] = new;
        } else {
            let conflict = matches!(outcome, Err(es::StoreError::Conflict { actual, .. }) if actual == current);
            prop_assert!(conflict, "{:?} at version {} gave {:?}", op, current, outcome.map(|a| a.version));
        }
    }
    for (index, stream) in STREAMS.iter().enumerate() {
        let read = store.read_stream("Account", stream, 1).await.unwrap();
        prop_assert_eq!(
            read.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
            (1..=versions[index]).collect::<Vec<_>>()
        );
    }
    let all = store.read_all(Cursor::START, usize::MAX).await.unwrap();
    let order: Vec<(usize, u64)> =
        all.iter().map(|e| (STREAMS.iter().position(|s| *s == e.stream_id).unwrap(), e.stream_version)).collect();
    prop_assert_eq!(order, log);
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_memory_store_behaves_like_the_model(ops in prop::collection::vec(append(), 1..40)) {
        runtime().block_on(check(es::MemoryStore::new(), ops))?;
    }

    #[test]
    fn the_sqlite_store_behaves_like_the_model(ops in prop::collection::vec(append(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let store = es::sqlite::SqliteStore::open(dir.path().join("model.db")).await.unwrap();
            check(store, ops).await
        })?;
    }
}
