//! Rows written behind the library's back: every reader refuses what the library never
//! writes, with a typed error naming where it stands, on every database backend.
//!
//! A backend's test file defines, for its store type `S`:
//! - `async fn new_store() -> S`;
//! - `async fn write_row(store: &S, stream_type: &str, stream_id: &str, version: i64)`:
//!   an event row (a deposit of 1) at `version`, with its outbox row, written with SQL;
//! - `async fn write_snapshot_row(store: &S, stream_id: &str, version: i64, state: &str)`:
//!   a `SnapshottedAccount` snapshot row at `version`, schema version 2;
//! - `async fn count_rows(store: &S, stream_id: &str) -> i64`: the stream's event rows;
//! - `async fn break_metadata(store: &S, stream_id: &str, version: i64)`: makes the
//!   metadata of the `Account` event at `version` text that is not JSON;
//!
//! and then invokes `corrupt_rows_suite!()`.

/// Generates the corrupt-row tests for the backend whose helpers are in scope.
#[macro_export]
macro_rules! corrupt_rows_suite {
    () => {
        mod suite {
            use super::{break_metadata, count_rows, new_store, write_row, write_snapshot_row};
            use es::relay::Outbox;
            use es::{
                CommandError, Cursor, EventStore, ExpectedVersion, IdSource, LoadError, ManualClock, Metadata,
                NewEvent, RandomIds, Relay, RelayOptions, Repository, Sink, SinkError, StoreError, StoredEvent,
                Timestamp,
            };
            use std::sync::{Arc, Mutex};
            use std::time::Duration;
            use $crate::support::{Account, AccountEvent, SnapshottedAccount};

            fn deposits(n: u64) -> Vec<NewEvent> {
                (1..=n)
                    .map(|amount| {
                        NewEvent::encode(
                            &AccountEvent::Deposited { amount },
                            RandomIds.next_id(),
                            Timestamp::EPOCH,
                            Metadata::default(),
                        )
                        .unwrap()
                    })
                    .collect()
            }

            /// Asserts a typed `Corrupt` error that names the stream and the version.
            #[track_caller]
            fn assert_names_corrupt_row(error: &StoreError, stream_id: &str, version: i64) {
                match error {
                    StoreError::Corrupt { location, reason } => {
                        assert!(location.contains(stream_id), "{location}: {reason}");
                        assert!(location.contains(&format!("version {version}")), "{location}: {reason}");
                    }
                    other => panic!("expected a corrupt row at {stream_id} version {version}, got {other:?}"),
                }
            }

            fn store_error<T: std::fmt::Debug>(outcome: Result<T, LoadError>) -> StoreError {
                match outcome {
                    Err(LoadError::Store(error)) => error,
                    other => panic!("expected a store error, got {other:?}"),
                }
            }

            #[tokio::test]
            async fn a_row_below_version_one_makes_every_load_of_its_stream_corrupt() {
                for version in [0_i64, -1] {
                    let store = new_store().await;
                    let stream = format!("low-{}", version.abs());
                    store.append("Account", &stream, ExpectedVersion::NoStream, deposits(3)).await.unwrap();
                    write_row(&store, "Account", &stream, version).await;
                    // The store's own fold (the fast path) ...
                    assert_names_corrupt_row(&store_error(store.load::<Account>(&stream).await), &stream, version);
                    // ... and a repository's load.
                    let repository = Repository::new(store.clone());
                    let error = store_error(repository.load::<Account>(&stream).await);
                    assert_names_corrupt_row(&error, &stream, version);
                }
            }

            #[tokio::test]
            async fn a_row_below_version_one_is_corrupt_for_a_load_that_starts_from_a_snapshot() {
                let store = new_store().await;
                let repository = Repository::new(store.clone());
                for _ in 0..4 {
                    repository
                        .execute::<SnapshottedAccount, std::convert::Infallible, _, _>("snap", |_, _| {
                            Ok(vec![AccountEvent::Deposited { amount: 1 }])
                        })
                        .await
                        .unwrap();
                }
                assert!(store.read_snapshot("SnapshottedAccount", "snap").await.unwrap().is_some());
                for version in [0_i64, -1] {
                    write_row(&store, "SnapshottedAccount", "snap", version).await;
                    let error = store_error(store.load::<SnapshottedAccount>("snap").await);
                    assert_names_corrupt_row(&error, "snap", version);
                }
            }

            #[tokio::test]
            async fn reading_a_stream_or_the_log_refuses_a_row_below_version_one() {
                for version in [0_i64, -1] {
                    let store = new_store().await;
                    store.append("Account", "r", ExpectedVersion::NoStream, deposits(2)).await.unwrap();
                    write_row(&store, "Account", "r", version).await;
                    let error = store.read_stream("Account", "r", 1).await.unwrap_err();
                    assert_names_corrupt_row(&error, "r", version);
                    let error = store.read_stream("Account", "r", 2).await.unwrap_err();
                    assert_names_corrupt_row(&error, "r", version);
                    // A backend may hold back the newest rows while transactions of other
                    // tests run: read until the corrupt row arrives.
                    let deadline = std::time::Instant::now() + Duration::from_secs(10);
                    let error = loop {
                        match store.read_all(Cursor::START, 100).await {
                            Err(error) => break error,
                            Ok(events) => {
                                assert!(events.len() <= 2, "the corrupt row was read as an event");
                                assert!(std::time::Instant::now() < deadline, "the corrupt row never arrived");
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                        }
                    };
                    assert_names_corrupt_row(&error, "r", version);
                }
            }

            /// What a paged read yields: the events' versions up to the first error,
            /// and that error.
            async fn read_paged<S: EventStore>(
                store: &S,
                stream_id: &str,
                page: usize,
            ) -> (Vec<u64>, Option<StoreError>) {
                use futures_util::StreamExt;
                let mut events = std::pin::pin!(store.read_stream_paged("Account", stream_id, 1, page));
                let mut versions = Vec::new();
                while let Some(item) = events.next().await {
                    match item {
                        Ok(event) => versions.push(event.stream_version),
                        Err(error) => {
                            assert!(events.next().await.is_none(), "the stream goes on after an error");
                            return (versions, Some(error));
                        }
                    }
                }
                (versions, None)
            }

            #[tokio::test]
            async fn a_gap_in_a_later_page_is_the_error_read_stream_gives() {
                let store = new_store().await;
                store.append("Account", "gap", ExpectedVersion::NoStream, deposits(5)).await.unwrap();
                write_row(&store, "Account", "gap", 7).await;
                let whole = store.read_stream("Account", "gap", 1).await.unwrap_err();
                assert_names_corrupt_row(&whole, "gap", 7);
                assert!(whole.to_string().contains("expected version 6, got 7"), "{whole}");
                for page in [1, 2, 3, 4, 100] {
                    let (versions, error) = read_paged(&store, "gap", page).await;
                    let error = error.unwrap_or_else(|| panic!("page {page}: the gap went unnoticed"));
                    assert_eq!(error.to_string(), whole.to_string(), "page {page}");
                    assert_names_corrupt_row(&error, "gap", 7);
                    // Every event before the gap that a page delivered whole came first.
                    assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
                }
                // From a version after the gap's start, the first event is the break.
                let error = store.read_stream("Account", "gap", 6).await.unwrap_err();
                assert!(error.to_string().contains("expected version 6, got 7"), "{error}");
            }

            #[tokio::test]
            async fn a_corrupt_row_in_a_later_page_is_the_error_read_stream_gives() {
                let store = new_store().await;
                store.append("Account", "bad", ExpectedVersion::NoStream, deposits(6)).await.unwrap();
                break_metadata(&store, "bad", 5).await;
                let whole = store.read_stream("Account", "bad", 1).await.unwrap_err();
                assert_names_corrupt_row(&whole, "bad", 5);
                for page in [1, 2, 4] {
                    let (versions, error) = read_paged(&store, "bad", page).await;
                    let error = error.unwrap_or_else(|| panic!("page {page}: the corrupt row went unnoticed"));
                    assert_eq!(error.to_string(), whole.to_string(), "page {page}");
                    // The pages before the corrupt row's were read whole.
                    assert_eq!(versions, (1..=(4 / page * page) as u64).collect::<Vec<_>>(), "page {page}");
                }
                // A row below version 1 is refused on the first page, as by `read_stream`.
                write_row(&store, "Account", "bad", 0).await;
                let whole = store.read_stream("Account", "bad", 3).await.unwrap_err();
                let (versions, error) = read_paged(&store, "bad", 2).await;
                assert!(versions.is_empty());
                assert_eq!(error.map(|e| e.to_string()), Some(whole.to_string()));
            }

            #[tokio::test]
            async fn a_command_on_a_stream_with_a_row_below_version_one_fails_and_writes_nothing() {
                for version in [0_i64, -1] {
                    let store = new_store().await;
                    let stream = format!("cmd-{}", version.abs());
                    write_row(&store, "Account", &stream, version).await;
                    let repository = Repository::new(store.clone());
                    let outcome = repository
                        .execute::<Account, std::convert::Infallible, _, _>(&stream, |_, _| {
                            Ok(vec![AccountEvent::Deposited { amount: 5 }])
                        })
                        .await;
                    match outcome {
                        Err(CommandError::Store(error)) => assert_names_corrupt_row(&error, &stream, version),
                        other => panic!("expected a corrupt stream, got {other:?}"),
                    }
                    // A bare append refuses it too, whatever version it expects.
                    for expected in [ExpectedVersion::NoStream, ExpectedVersion::Any] {
                        let error = store.append("Account", &stream, expected, deposits(1)).await.unwrap_err();
                        assert_names_corrupt_row(&error, &stream, version);
                    }
                    assert_eq!(count_rows(&store, &stream).await, 1, "nothing was written");
                }
            }

            #[tokio::test]
            async fn a_snapshot_below_version_one_is_corrupt_not_version_zero() {
                for version in [0_i64, -3] {
                    let store = new_store().await;
                    store.append("SnapshottedAccount", "s", ExpectedVersion::NoStream, deposits(2)).await.unwrap();
                    write_snapshot_row(&store, "s", version, r#"{"balance":1000,"events":7}"#).await;
                    let error = store.read_snapshot("SnapshottedAccount", "s").await.unwrap_err();
                    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
                    // Never a state that counts its events twice.
                    let error = store_error(store.load::<SnapshottedAccount>("s").await);
                    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
                }
            }

            #[derive(Clone, Default)]
            struct Recording(Arc<Mutex<Vec<StoredEvent>>>);

            impl Sink for Recording {
                async fn deliver(&self, events: &[StoredEvent], _lease: es::LeaseGeneration) -> Result<(), SinkError> {
                    self.0.lock().unwrap().extend_from_slice(events);
                    Ok(())
                }
            }

            #[tokio::test]
            async fn the_relay_parks_a_row_below_version_one_and_delivers_the_rest() {
                for version in [0_i64, -1] {
                    let store = new_store().await;
                    write_row(&store, "Account", "bad", version).await;
                    store.append("Account", "good", ExpectedVersion::NoStream, deposits(2)).await.unwrap();
                    let sink = Recording::default();
                    let options = RelayOptions { poll_interval: Duration::from_millis(10), ..RelayOptions::default() };
                    let mut relay = Relay::new(store.clone(), sink.clone(), options);
                    let report = relay.run_once().await.unwrap();
                    assert_eq!((report.delivered, report.parked), (2, 1));
                    let parked = store.status().await.unwrap().parked;
                    assert_eq!(parked.len(), 1);
                    assert_eq!(parked[0].stream_id, "bad");
                    assert!(parked[0].last_error.contains(&format!("version {version}")), "{}", parked[0].last_error);
                    assert!(sink.0.lock().unwrap().iter().all(|event| event.stream_id == "good"));
                    relay.release().await.unwrap();
                }
            }

            #[tokio::test]
            async fn the_relay_schedules_retries_on_its_own_clock() {
                struct Failing;
                impl Sink for Failing {
                    async fn deliver(&self, _: &[StoredEvent], _: es::LeaseGeneration) -> Result<(), SinkError> {
                        Err(SinkError::transient("down"))
                    }
                }
                let store = new_store().await;
                store.append("Account", "late", ExpectedVersion::NoStream, deposits(1)).await.unwrap();
                // A clock far in the past: the retry is due long before the machine's now.
                let clock = Arc::new(ManualClock::new(Timestamp::from_unix_micros(1_000_000)));
                let options = RelayOptions {
                    backoff_base: Duration::from_mins(1),
                    backoff_max: Duration::from_mins(1),
                    clock: clock.clone(),
                    ..RelayOptions::default()
                };
                let mut relay = Relay::new(store.clone(), Failing, options);
                assert_eq!(relay.run_once().await.unwrap().failed, 1);
                // Not due yet on the relay's clock, although the machine's is decades later.
                assert_eq!(relay.run_once().await.unwrap().failed, 0);
                clock.advance(Duration::from_mins(2));
                assert_eq!(relay.run_once().await.unwrap().failed, 1);
                relay.release().await.unwrap();
            }
        }
    };
}
