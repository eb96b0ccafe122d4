//! The store conformance suite: written once, run against every backend.
//!
//! A backend's test file defines `async fn new_store() -> impl EventStore` and then
//! invokes `conformance_suite!()`.

/// Generates the conformance tests for the backend whose `new_store` is in scope.
#[macro_export]
macro_rules! conformance_suite {
    () => {
        mod suite {
            use super::new_store;
            use $crate::support::{Account, AccountEvent, BankError, awkward_notes};
            use es::{
                Aggregate, Cursor, EventStore, ExpectedVersion, IdSource, ManualClock, Metadata, NewEvent, Repository,
                SequentialIds, StoreError, Timestamp,
            };

            const T0: Timestamp = Timestamp::from_unix_micros(1_767_225_600_123_456);

            fn new_events(ids: &SequentialIds, events: &[AccountEvent]) -> Vec<NewEvent> {
                events
                    .iter()
                    .map(|event| NewEvent::encode(event, ids.next_id(), T0, Metadata::default()).unwrap())
                    .collect()
            }

            fn deposits(n: u64) -> Vec<AccountEvent> {
                (1..=n).map(|amount| AccountEvent::Deposited { amount }).collect()
            }

            #[tokio::test]
            async fn versions_start_at_one_and_are_contiguous() {
                let store = new_store().await;
                let ids = SequentialIds::new();
                let first = store.append("Account", "a-1", ExpectedVersion::NoStream, new_events(&ids, &deposits(3))).await.unwrap();
                assert_eq!(first.version, 3);
                let second = store.append("Account", "a-1", ExpectedVersion::Exact(3), new_events(&ids, &deposits(2))).await.unwrap();
                assert_eq!(second.version, 5);
                assert!(first.cursors.iter().chain(&second.cursors).collect::<Vec<_>>().is_sorted());
                let read = store.read_stream("Account", "a-1", 1).await.unwrap();
                assert_eq!(read.iter().map(|e| e.stream_version).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
                let tail = store.read_stream("Account", "a-1", 4).await.unwrap();
                assert_eq!(tail.iter().map(|e| e.stream_version).collect::<Vec<_>>(), vec![4, 5]);
            }

            /// Everything a paged read of the stream yields, errors included.
            async fn paged<S: EventStore>(store: &S, stream_id: &str, from: u64, page: usize) -> Vec<Result<es::StoredEvent, String>> {
                use futures_util::StreamExt;
                store.read_stream_paged("Account", stream_id, from, page).map(|r| r.map_err(|e| e.to_string())).collect().await
            }

            #[tokio::test]
            async fn a_paged_read_of_a_stream_is_read_stream_a_page_at_a_time() {
                let store = new_store().await;
                let ids = SequentialIds::new();
                // Two streams interleaved, so that a page of one never holds the other.
                for round in 0..3 {
                    let expected = if round == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Any };
                    store.append("Account", "p-1", expected, new_events(&ids, &deposits(3))).await.unwrap();
                    store.append("Account", "p-2", expected, new_events(&ids, &deposits(1))).await.unwrap();
                }
                for page in [0, 1, 2, 3, 8, 9, 10, 1000] {
                    for from in [0, 1, 2, 5, 9, 10, 50] {
                        let whole = store.read_stream("Account", "p-1", from).await.unwrap();
                        let read: Vec<_> = paged(&store, "p-1", from, page).await.into_iter().map(Result::unwrap).collect();
                        assert_eq!(read, whole, "page {page}, from version {from}");
                    }
                }
                assert_eq!(paged(&store, "p-1", 1, 4).await.len(), 9);
                assert!(paged(&store, "missing", 1, 4).await.is_empty());
                // A name no store keeps: the same error as `read_stream`, as the only item.
                let too_long = "x".repeat(es::MAX_STREAM_ID_BYTES + 1);
                let error = store.read_stream("Account", &too_long, 1).await.unwrap_err().to_string();
                assert_eq!(paged(&store, &too_long, 1, 4).await, vec![Err(error)]);
            }

            #[tokio::test]
            async fn a_paged_read_of_the_log_is_read_all_a_page_at_a_time() {
                use futures_util::TryStreamExt;
                let store = new_store().await;
                let ids = SequentialIds::new();
                for stream in ["l-1", "l-2", "l-3", "l-1"] {
                    store.append("Account", stream, ExpectedVersion::Any, new_events(&ids, &deposits(2))).await.unwrap();
                }
                let whole = store.read_all(Cursor::START, 100).await.unwrap();
                assert_eq!(whole.len(), 8);
                for page in [0, 1, 3, 8, 100] {
                    let read: Vec<_> = store.read_all_paged(Cursor::START, page).try_collect().await.unwrap();
                    assert_eq!(read, whole, "page {page}");
                    let rest: Vec<_> = store.read_all_paged(whole[2].cursor, page).try_collect().await.unwrap();
                    assert_eq!(rest, whole[3..], "page {page}, after the third event");
                }
            }

            #[tokio::test]
            async fn a_stale_expected_version_is_a_typed_conflict_and_writes_nothing() {
                let store = new_store().await;
                let ids = SequentialIds::new();
                store.append("Account", "a-1", ExpectedVersion::NoStream, new_events(&ids, &deposits(2))).await.unwrap();
                for expected in [ExpectedVersion::NoStream, ExpectedVersion::Exact(1), ExpectedVersion::Exact(3)] {
                    let error = store.append("Account", "a-1", expected, new_events(&ids, &deposits(1))).await.unwrap_err();
                    match error {
                        StoreError::Conflict { stream_id, actual, expected: reported, .. } => {
                            assert_eq!((stream_id.as_str(), actual, reported), ("a-1", 2, expected));
                        }
                        other => panic!("expected a conflict, got {other}"),
                    }
                }
                assert_eq!(store.read_stream("Account", "a-1", 1).await.unwrap().len(), 2);
                let any = store.append("Account", "a-1", ExpectedVersion::Any, new_events(&ids, &deposits(1))).await.unwrap();
                assert_eq!(any.version, 3);
            }

            #[tokio::test]
            async fn a_repeated_event_id_is_refused_and_the_whole_append_with_it() {
                let store = new_store().await;
                let ids = SequentialIds::new();
                let events = new_events(&ids, &deposits(2));
                store.append("Account", "a-1", ExpectedVersion::NoStream, events[..1].to_vec()).await.unwrap();
                let error = store.append("Account", "a-2", ExpectedVersion::NoStream, vec![events[1].clone(), events[0].clone()]).await.unwrap_err();
                assert!(matches!(error, StoreError::DuplicateEventId { event_id } if event_id == events[0].event_id), "{error}");
                assert!(store.read_stream("Account", "a-2", 1).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn streams_are_told_apart_by_type_and_id() {
                let store = new_store().await;
                let ids = SequentialIds::new();
                store.append("Account", "x", ExpectedVersion::NoStream, new_events(&ids, &deposits(1))).await.unwrap();
                store.append("Ledger", "x", ExpectedVersion::NoStream, new_events(&ids, &deposits(2))).await.unwrap();
                store.append("Account", "y", ExpectedVersion::NoStream, new_events(&ids, &deposits(3))).await.unwrap();
                assert_eq!(store.read_stream("Account", "x", 1).await.unwrap().len(), 1);
                assert_eq!(store.read_stream("Ledger", "x", 1).await.unwrap().len(), 2);
                assert_eq!(store.read_stream("Account", "y", 1).await.unwrap().len(), 3);
                assert!(store.read_stream("Ledger", "y", 1).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn an_empty_append_checks_the_version_but_writes_nothing() {
                let store = new_store().await;
                let appended = store.append("Account", "a-1", ExpectedVersion::NoStream, vec![]).await.unwrap();
                assert_eq!(appended.version, 0);
                assert!(store.read_all(Cursor::START, 10).await.unwrap().is_empty());
                let ids = SequentialIds::new();
                store.append("Account", "a-1", ExpectedVersion::NoStream, new_events(&ids, &deposits(1))).await.unwrap();
                let error = store.append("Account", "a-1", ExpectedVersion::NoStream, vec![]).await.unwrap_err();
                assert!(matches!(error, StoreError::Conflict { actual: 1, .. }), "{error}");
            }

            #[tokio::test]
            async fn the_global_log_is_read_strictly_after_a_cursor_in_commit_order() {
                let store = new_store().await;
                let ids = SequentialIds::new();
                for round in 0..4 {
                    for stream in ["a", "b", "c"] {
                        let expected = if round == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(round) };
                        store.append("Account", stream, expected, new_events(&ids, &deposits(1))).await.unwrap();
                    }
                }
                let mut cursor = Cursor::START;
                let mut seen = Vec::new();
                // A backend may hold back the newest events while older transactions
                // (of other tests, here) are still running: read until all arrived.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while seen.len() < 12 && std::time::Instant::now() < deadline {
                    let page = store.read_all(cursor, 5).await.unwrap();
                    assert!(page.len() <= 5);
                    if let Some(last) = page.last() {
                        cursor = last.cursor;
                    } else {
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                    seen.extend(page);
                }
                assert_eq!(seen.len(), 12);
                let order: Vec<_> = seen.iter().map(|e| (e.stream_id.clone(), e.stream_version)).collect();
                let expected: Vec<_> = (1..=4u64).flat_map(|v| ["a", "b", "c"].map(|s| (s.to_owned(), v))).collect();
                assert_eq!(order, expected);
                assert!(seen.windows(2).all(|w| w[0].cursor < w[1].cursor));
                assert!(store.read_all(cursor, 5).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn recorded_events_round_trip_exactly() {
                let store = new_store().await;
                let ids = SequentialIds::new();
                let mut events = vec![AccountEvent::Opened { owner: "Zoë 🦀".into(), at: T0 }];
                events.extend(awkward_notes().into_iter().map(AccountEvent::Noted));
                events.push(AccountEvent::Closed);
                let metadata = Metadata {
                    correlation_id: Some(SequentialIds::nth(900)),
                    causation_id: Some(SequentialIds::nth(901)),
                    user: [("tenant".to_owned(), "ünïcode \u{0}".to_owned())].into(),
                };
                let new: Vec<NewEvent> = events
                    .iter()
                    .map(|event| NewEvent::encode(event, ids.next_id(), T0, metadata.clone()).unwrap())
                    .collect();
                store.append("Account", "a-1", ExpectedVersion::NoStream, new.clone()).await.unwrap();
                let read = store.read_stream("Account", "a-1", 1).await.unwrap();
                assert_eq!(read.len(), events.len());
                for ((stored, sent), original) in read.into_iter().zip(&new).zip(&events) {
                    assert_eq!(stored.event_id, sent.event_id);
                    assert_eq!(stored.occurred_at, T0);
                    assert_eq!(stored.metadata, metadata);
                    assert_eq!((stored.event_type.as_str(), stored.schema_version), (sent.event_type.as_str(), sent.schema_version));
                    let recorded = stored.decode::<AccountEvent>().unwrap();
                    // Compare floats by bits: -0.0 == 0.0 would hide a lost sign.
                    assert_eq!(format!("{:?}", recorded.event()), format!("{original:?}"));
                    if let (AccountEvent::Noted(a), AccountEvent::Noted(b)) = (recorded.event(), original) {
                        assert_eq!((a.ratio.to_bits(), a.tiny.to_bits()), (b.ratio.to_bits(), b.tiny.to_bits()));
                    }
                }
            }

            #[tokio::test]
            async fn the_state_after_a_command_is_the_state_every_replay_rebuilds() {
                let clock = ManualClock::new(T0);
                let repository = Repository::new(new_store().await).with_clock(clock).with_ids(SequentialIds::new());
                let opened = repository.execute("a-1", |a: &Account, ctx| a.open("Ada", ctx)).await.unwrap();
                assert_eq!(opened.events[0].occurred_at(), T0);
                assert_eq!(opened.state.opened_at, Some(T0));
                repository.execute("a-1", |a: &Account, _| a.deposit(100)).await.unwrap();
                let noted = repository
                    .execute("a-1", |_: &Account, _| Ok::<_, BankError>(awkward_notes().into_iter().map(AccountEvent::Noted).collect()))
                    .await
                    .unwrap();
                let last = repository.execute("a-1", |a: &Account, _| a.withdraw(30)).await.unwrap();
                assert_eq!(noted.version + 1, last.version);
                let replayed = repository.load::<Account>("a-1").await.unwrap();
                assert_eq!(replayed.version(), last.version);
                assert_eq!(format!("{:?}", replayed.state()), format!("{:?}", last.state));
                assert_eq!(replayed.state().balance, 70);
            }

            #[tokio::test]
            async fn a_rejected_command_writes_nothing() {
                let repository = Repository::new(new_store().await);
                repository.execute("a-1", |a: &Account, ctx| a.open("Ada", ctx)).await.unwrap();
                let error = repository.execute("a-1", |a: &Account, _| a.withdraw(1)).await.unwrap_err();
                assert!(matches!(error, es::CommandError::Rejected(BankError::InsufficientFunds { balance: 0, asked: 1 })));
                assert_eq!(repository.load::<Account>("a-1").await.unwrap().version(), 1);
            }

            #[tokio::test]
            async fn a_state_json_cannot_hold_is_not_snapshotted_and_loads_back_the_same() {
                use $crate::support::{Gauge, GaugeEvent};
                let repository = Repository::new(new_store().await);
                let readings = [(1.0, 2.0), (0.0, 0.0), (3.0, 4.0), (1.0, 0.0), (-1.0, 0.0), (2.0, 8.0)];
                for (stream, start) in [("nan", 0), ("infinite", 3)] {
                    for &(numerator, denominator) in &readings[start..] {
                        let committed = repository
                            .execute(stream, |_: &Gauge, _| {
                                Ok::<_, BankError>(vec![GaugeEvent::Measured { numerator, denominator }])
                            })
                            .await
                            .unwrap();
                        let loaded = repository.load::<Gauge>(stream).await.unwrap();
                        assert_eq!(loaded.state().bits(), committed.state.bits(), "{stream} after {numerator}/{denominator}");
                        assert_eq!(loaded.version(), committed.version);
                    }
                }
            }

            #[tokio::test]
            async fn stream_ids_up_to_the_maximum_are_stored_and_longer_ones_are_unstorable_everywhere() {
                let store = new_store().await;
                let ids = SequentialIds::new();
                // Two bytes per character: the limit is in bytes.
                let longest = "é".repeat(es::MAX_STREAM_ID_BYTES / 2);
                let longest_type = "T".repeat(es::MAX_STREAM_TYPE_BYTES);
                store.append("Account", &longest, ExpectedVersion::NoStream, new_events(&ids, &deposits(1))).await.unwrap();
                store.append(&longest_type, &longest, ExpectedVersion::NoStream, new_events(&ids, &deposits(1))).await.unwrap();
                assert_eq!(store.read_stream("Account", &longest, 1).await.unwrap().len(), 1);
                assert_eq!(store.load::<Account>(&longest).await.unwrap().version(), 1);
                let too_long = format!("{longest}x");
                let too_long_type = format!("{longest_type}T");
                let unstorable = |error: &StoreError| matches!(error, StoreError::Unstorable { .. });
                let error = store.append("Account", &too_long, ExpectedVersion::Any, new_events(&ids, &deposits(1))).await.unwrap_err();
                assert!(unstorable(&error), "{error:?}");
                let error = store.append(&too_long_type, "a-1", ExpectedVersion::Any, new_events(&ids, &deposits(1))).await.unwrap_err();
                assert!(unstorable(&error), "{error:?}");
                let error = store.read_stream("Account", &too_long, 1).await.unwrap_err();
                assert!(unstorable(&error), "{error:?}");
                match store.load::<Account>(&too_long).await {
                    Err(es::LoadError::Store(error)) => assert!(unstorable(&error), "{error:?}"),
                    other => panic!("expected an unstorable stream id, got {other:?}"),
                }
                let repository = Repository::new(store);
                match repository.execute(&too_long, |a: &Account, ctx| a.open("Ada", ctx)).await {
                    Err(es::CommandError::Store(error)) => assert!(unstorable(&error), "{error:?}"),
                    other => panic!("expected an unstorable stream id, got {other:?}"),
                }
            }

            #[tokio::test]
            async fn a_nul_in_a_stream_name_or_event_type_is_unstorable_everywhere() {
                let store = new_store().await;
                let ids = SequentialIds::new();
                let unstorable = |error: &StoreError| matches!(error, StoreError::Unstorable { .. });
                let error = store.append("Account", "a\0b", ExpectedVersion::Any, new_events(&ids, &deposits(1))).await.unwrap_err();
                assert!(unstorable(&error), "{error:?}");
                let error = store.append("Acc\0ount", "a", ExpectedVersion::Any, new_events(&ids, &deposits(1))).await.unwrap_err();
                assert!(unstorable(&error), "{error:?}");
                let mut events = new_events(&ids, &deposits(1));
                events[0].event_type = "Depo\0sited".into();
                let error = store.append("Account", "a", ExpectedVersion::Any, events).await.unwrap_err();
                assert!(unstorable(&error), "{error:?}");
                let error = store.read_stream("Account", "a\0b", 1).await.unwrap_err();
                assert!(unstorable(&error), "{error:?}");
                match store.load::<Account>("a\0b").await {
                    Err(es::LoadError::Store(error)) => assert!(unstorable(&error), "{error:?}"),
                    other => panic!("expected an unstorable stream id, got {other:?}"),
                }
                let repository = Repository::new(store);
                match repository.execute("a\0b", |a: &Account, ctx| a.open("Ada", ctx)).await {
                    Err(es::CommandError::Store(error)) => assert!(unstorable(&error), "{error:?}"),
                    other => panic!("expected an unstorable stream id, got {other:?}"),
                }
                assert!(repository.load::<Account>("a").await.unwrap().version() == 0);
            }

            #[tokio::test]
            async fn one_event_id_twice_in_one_append_is_a_duplicate_and_nothing_is_written() {
                let store = new_store().await;
                let ids = SequentialIds::new();
                let events = new_events(&ids, &deposits(2));
                let twice = vec![events[0].clone(), events[1].clone(), events[0].clone()];
                let error = store.append("Account", "a-1", ExpectedVersion::NoStream, twice).await.unwrap_err();
                assert!(matches!(error, StoreError::DuplicateEventId { event_id } if event_id == events[0].event_id), "{error}");
                assert!(store.read_stream("Account", "a-1", 1).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn snapshots_shorten_loads_and_never_change_the_state() {
                use $crate::support::SnapshottedAccount;
                use es::Snapshot;
                let repository = Repository::new(new_store().await);
                for amount in 1..=10 {
                    repository
                        .execute("s-1", |_: &SnapshottedAccount, _| {
                            Ok::<_, BankError>(vec![AccountEvent::Deposited { amount }])
                        })
                        .await
                        .unwrap();
                }
                let store = repository.store();
                let snapshot = store.read_snapshot("SnapshottedAccount", "s-1").await.unwrap();
                let snapshot = snapshot.expect("a snapshot every 3 events");
                assert_eq!((snapshot.stream_version, snapshot.schema_version), (9, 2));

                let full = es::rehydrate::<SnapshottedAccount>(
                    "s-1",
                    store.read_stream("SnapshottedAccount", "s-1", 1).await.unwrap(),
                )
                .unwrap();
                let loaded = repository.load::<SnapshottedAccount>("s-1").await.unwrap();
                assert_eq!((loaded.state(), loaded.version()), (full.state(), 10));
                assert_eq!(loaded.state().balance, 55);

                // A snapshot that claims more than the events say is used as it is: the
                // proof that loads start from it (events = 1000 + the one after it).
                let forged = Snapshot { stream_version: 9, schema_version: 2, state: r#"{"balance":0,"events":1000}"#.into() };
                store.write_snapshot("SnapshottedAccount", "s-1", forged).await.unwrap();
                assert_eq!(repository.load::<SnapshottedAccount>("s-1").await.unwrap().state().events, 1001);

                // One of another schema version, or one that does not decode, is ignored.
                for (schema_version, state) in [(1, r#"{"balance":0,"events":1000}"#), (2, "not json")] {
                    let stale = Snapshot { stream_version: 10, schema_version, state: state.into() };
                    store.write_snapshot("SnapshottedAccount", "s-1", stale).await.unwrap();
                    let loaded = repository.load::<SnapshottedAccount>("s-1").await.unwrap();
                    assert_eq!((loaded.state(), loaded.version()), (full.state(), 10));
                }
                // An older snapshot never replaces a newer one.
                let older = Snapshot { stream_version: 3, schema_version: 2, state: "{}".into() };
                store.write_snapshot("SnapshottedAccount", "s-1", older).await.unwrap();
                assert_eq!(store.read_snapshot("SnapshottedAccount", "s-1").await.unwrap().unwrap().stream_version, 10);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_writers_at_one_version_have_exactly_one_winner() {
                let store = std::sync::Arc::new(new_store().await);
                let ids = std::sync::Arc::new(es::RandomIds);
                let seed = new_events(&SequentialIds::new(), &deposits(1));
                store.append("Account", "hot", ExpectedVersion::NoStream, seed).await.unwrap();
                let writers: Vec<_> = (0..8)
                    .map(|_| {
                        let store = store.clone();
                        let ids = ids.clone();
                        tokio::spawn(async move {
                            let event = NewEvent::encode(&AccountEvent::Deposited { amount: 1 }, ids.next_id(), T0, Metadata::default()).unwrap();
                            store.append("Account", "hot", ExpectedVersion::Exact(1), vec![event]).await
                        })
                    })
                    .collect();
                let mut winners = 0;
                for writer in writers {
                    match writer.await.unwrap() {
                        Ok(appended) => {
                            winners += 1;
                            assert_eq!(appended.version, 2);
                        }
                        Err(StoreError::Conflict { actual: 2, .. }) => {}
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
                assert_eq!(winners, 1);
                let versions: Vec<_> = store.read_stream("Account", "hot", 1).await.unwrap().iter().map(|e| e.stream_version).collect();
                assert_eq!(versions, vec![1, 2]);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn retrying_commands_lose_no_update() {
                let repository = std::sync::Arc::new(Repository::new(new_store().await));
                repository.execute("a-1", |a: &Account, ctx| a.open("Ada", ctx)).await.unwrap();
                let tasks: Vec<_> = (0..6)
                    .map(|_| {
                        let repository = repository.clone();
                        tokio::spawn(async move {
                            for _ in 0..5 {
                                repository
                                    .execute_with("a-1", es::Retry::attempts(100), Metadata::default(), |a: &Account, _| a.deposit(1))
                                    .await
                                    .unwrap();
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                let account = repository.load::<Account>("a-1").await.unwrap();
                assert_eq!((account.state().balance, account.version()), (30, 31));
                assert_eq!(Account::stream_type(), "Account");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_decisions_are_rerun_whole_on_conflict_and_lose_no_update() {
                let repository = std::sync::Arc::new(Repository::new(new_store().await));
                repository.execute("a-2", |a: &Account, ctx| a.open("Ada", ctx)).await.unwrap();
                let decisions = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
                let tasks: Vec<_> = (0..4)
                    .map(|_| {
                        let (repository, decisions) = (repository.clone(), decisions.clone());
                        // Spawned: the command's future is `Send` with an async decision.
                        tokio::spawn(async move {
                            for _ in 0..5 {
                                repository
                                    .execute_async_with("a-2", es::Retry::attempts(100), Metadata::default(), |a: &Account, _| {
                                        let decisions = decisions.clone();
                                        Box::pin(async move {
                                            // Stands for a call to another service, awaited mid-decision.
                                            decisions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                            tokio::task::yield_now().await;
                                            a.deposit(1)
                                        })
                                    })
                                    .await
                                    .unwrap();
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                let account = repository.load::<Account>("a-2").await.unwrap();
                assert_eq!((account.state().balance, account.version()), (20, 21));
                // Every attempt ran the decision, its awaited call included.
                assert!(decisions.load(std::sync::atomic::Ordering::Relaxed) >= 20);
            }

            #[tokio::test]
            async fn an_async_decision_that_refuses_writes_nothing() {
                let repository = Repository::new(new_store().await);
                let error = repository
                    .execute_async("a-3", |a: &Account, _| {
                        Box::pin(async move {
                            tokio::task::yield_now().await;
                            a.deposit(5)
                        })
                    })
                    .await
                    .unwrap_err();
                assert!(matches!(error, es::CommandError::Rejected(BankError::NotOpen)), "{error:?}");
                assert!(repository.store().read_stream("Account", "a-3", 1).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn a_command_under_a_recorded_key_returns_the_first_outcome_without_deciding() {
                let repository = Repository::new(new_store().await);
                repository.execute("once-1", |a: &Account, ctx| a.open("Ada", ctx)).await.unwrap();
                let decisions = std::sync::atomic::AtomicU32::new(0);
                let deposit = |a: &Account, _: &es::Context<'_>| {
                    decisions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    a.deposit(5)
                };
                let first = repository.execute_once("once-1", "request-1", deposit).await.unwrap();
                // Another command moves the stream on in between.
                repository.execute("once-1", |a: &Account, _| a.deposit(100)).await.unwrap();
                let retry = repository.execute_once("once-1", "request-1", deposit).await.unwrap();
                assert_eq!(decisions.load(std::sync::atomic::Ordering::Relaxed), 1, "the retry decided again");
                assert!(!first.repeated && retry.repeated);
                assert_eq!((retry.version, retry.state.balance), (first.version, first.state.balance));
                assert_eq!((first.version, first.state.balance), (2, 5));
                assert_eq!(retry.events, first.events);
                assert_eq!(retry.cursor(), first.cursor());
                assert!(first.cursor().is_some());
                let account = repository.load::<Account>("once-1").await.unwrap();
                assert_eq!((account.state().balance, account.version()), (105, 3));
                // The typed handle and the async form see the same record.
                let again = repository
                    .execute_async_once("once-1", "request-1", |a: &Account, _| Box::pin(async move { a.deposit(7) }))
                    .await
                    .unwrap();
                assert!(again.repeated);
                assert_eq!(again.events, first.events);
                let handle = repository.aggregate::<Account>().execute_once("once-1", "request-1", |a, _| a.deposit(9)).await.unwrap();
                assert!(handle.repeated);
            }

            #[tokio::test]
            async fn a_key_is_for_one_stream_and_failed_or_empty_commands_record_nothing() {
                let repository = Repository::new(new_store().await);
                for stream in ["once-a", "once-b"] {
                    repository.execute(stream, |a: &Account, ctx| a.open("Ada", ctx)).await.unwrap();
                }
                repository.execute_once("once-a", "k-1", |a: &Account, _| a.deposit(1)).await.unwrap();
                let error = repository.execute_once("once-b", "k-1", |a: &Account, _| a.deposit(1)).await.unwrap_err();
                match error {
                    es::CommandError::KeyReused { key, stream_type, stream_id } => {
                        assert_eq!((key.as_str(), stream_type.as_str(), stream_id.as_str()), ("k-1", "Account", "once-a"));
                    }
                    other => panic!("expected KeyReused, got {other:?}"),
                }
                assert_eq!(repository.load::<Account>("once-b").await.unwrap().version(), 1);
                // A rejected first attempt records nothing: the retry runs as a first execution.
                let rejected = repository.execute_once("once-b", "k-2", |a: &Account, _| a.withdraw(1_000)).await;
                assert!(matches!(rejected, Err(es::CommandError::Rejected(_))), "{rejected:?}");
                assert!(repository.store().recorded_command("k-2").await.unwrap().is_none());
                let retried = repository.execute_once("once-b", "k-2", |a: &Account, _| a.deposit(3)).await.unwrap();
                assert!(!retried.repeated);
                // A decision with no event records nothing either.
                let empty = repository.execute_once("once-b", "k-3", |_: &Account, _| Ok::<_, BankError>(vec![])).await.unwrap();
                assert!(!empty.repeated && empty.events.is_empty() && empty.cursor().is_none());
                assert!(repository.store().recorded_command("k-3").await.unwrap().is_none());
                let recorded = repository.store().recorded_command("k-2").await.unwrap().unwrap();
                assert_eq!((recorded.stream_id.as_str(), recorded.first_version, recorded.last_version), ("once-b", 2, 2));
                // Keys no store can keep are refused before anything runs.
                let error = repository.execute_once("once-b", "", |a: &Account, _| a.deposit(1)).await.unwrap_err();
                assert!(matches!(error, es::CommandError::Store(StoreError::InvalidCommandKey { .. })), "{error:?}");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_executions_under_one_key_append_once_and_agree() {
                let repository = std::sync::Arc::new(Repository::new(new_store().await));
                repository.execute("once-hot", |a: &Account, ctx| a.open("Ada", ctx)).await.unwrap();
                let tasks: Vec<_> = (0..8)
                    .map(|_| {
                        let repository = repository.clone();
                        tokio::spawn(async move {
                            repository.execute_once("once-hot", "same-request", |a: &Account, _| a.deposit(10)).await
                        })
                    })
                    .collect();
                let mut outcomes = Vec::new();
                for task in tasks {
                    outcomes.push(task.await.unwrap().expect("every execution under the key succeeds"));
                }
                let account = repository.load::<Account>("once-hot").await.unwrap();
                assert_eq!((account.state().balance, account.version()), (10, 2), "appended more than once");
                assert_eq!(outcomes.iter().filter(|o| !o.repeated).count(), 1);
                for outcome in &outcomes {
                    assert_eq!(outcome.events, outcomes[0].events);
                    assert_eq!((outcome.version, outcome.state.balance), (2, 10));
                }
            }

            #[tokio::test]
            async fn pruned_keys_are_forgotten_and_recent_ones_kept() {
                let repository = Repository::new(new_store().await);
                repository.execute("once-p", |a: &Account, ctx| a.open("Ada", ctx)).await.unwrap();
                repository.execute_once("once-p", "old", |a: &Account, _| a.deposit(1)).await.unwrap();
                let store = repository.store();
                let recorded_at = store.recorded_command("old").await.unwrap().unwrap().recorded_at;
                assert_eq!(store.prune_commands(recorded_at).await.unwrap(), 0, "a key at the cutoff is kept");
                let after = Timestamp::from_unix_micros(recorded_at.as_unix_micros() + 1);
                assert_eq!(store.prune_commands(after).await.unwrap(), 1);
                assert!(store.recorded_command("old").await.unwrap().is_none());
                let again = repository.execute_once("once-p", "old", |a: &Account, _| a.deposit(1)).await.unwrap();
                assert!(!again.repeated);
                assert_eq!(repository.load::<Account>("once-p").await.unwrap().state().balance, 2);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_subscription_reads_history_then_live_events_in_commit_order_once() {
                use futures_util::StreamExt;
                let store = std::sync::Arc::new(new_store().await);
                let ids = SequentialIds::new();
                store.append("Account", "sub-1", ExpectedVersion::NoStream, new_events(&ids, &deposits(3))).await.unwrap();
                // Where the log stood before this test's events (backends may share it).
                let before: Vec<_> = store.read_stream("Account", "sub-1", 1).await.unwrap();
                let start = Cursor { commit: before[0].cursor.commit, position: before[0].cursor.position - 1 };
                let writer = {
                    let store = store.clone();
                    tokio::spawn(async move {
                        let ids = es::RandomIds;
                        for round in 0..20_u64 {
                            let stream = format!("sub-{}", 2 + round % 3);
                            let event = NewEvent::encode(&AccountEvent::Deposited { amount: round }, ids.next_id(), T0, Metadata::default()).unwrap();
                            store.append("Account", &stream, ExpectedVersion::Any, vec![event]).await.unwrap();
                            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                        }
                    })
                };
                let subscription = es::subscription::subscribe(&*store, start)
                    .stream_type("Account")
                    .batch_size(4)
                    .poll_interval(std::time::Duration::from_millis(20));
                let mut seen = Vec::new();
                let mut events = std::pin::pin!(subscription);
                while seen.len() < 23 {
                    let event = tokio::time::timeout(std::time::Duration::from_secs(10), events.next())
                        .await
                        .expect("a live event never arrived")
                        .unwrap()
                        .unwrap();
                    if event.stream_id.starts_with("sub-") {
                        seen.push(event);
                    }
                }
                writer.await.unwrap();
                assert!(seen.windows(2).all(|pair| pair[0].cursor < pair[1].cursor), "not in commit order");
                let ids: std::collections::HashSet<_> = seen.iter().map(|event| event.event_id).collect();
                assert_eq!(ids.len(), 23, "an event came twice");
                for stream in ["sub-1", "sub-2", "sub-3", "sub-4"] {
                    let versions: Vec<_> = seen.iter().filter(|e| e.stream_id == stream).map(|e| e.stream_version).collect();
                    let expected: Vec<u64> = (1..=versions.len() as u64).collect();
                    assert_eq!(versions, expected, "stream {stream} skipped or reordered");
                }
                let extra = tokio::time::timeout(std::time::Duration::from_millis(100), events.next()).await;
                assert!(extra.is_err(), "an event was invented: {extra:?}");
            }

            #[tokio::test]
            async fn a_durable_subscription_resumes_strictly_after_its_last_acknowledgement() {
                use futures_util::StreamExt;
                let store = new_store().await;
                let ids = SequentialIds::new();
                store.append("Account", "dur-1", ExpectedVersion::NoStream, new_events(&ids, &deposits(4))).await.unwrap();
                let versions = |events: &[es::StoredEvent]| events.iter().map(|e| e.stream_version).collect::<Vec<_>>();
                let mut first = es::subscription::durable(&store, "billing", "worker-a").stream_type("Account").start().await.unwrap();
                let mut seen = Vec::new();
                for _ in 0..3 {
                    seen.push(first.next().await.unwrap().unwrap());
                }
                assert_eq!(versions(&seen), [1, 2, 3]);
                // Handled 1 and 2, acknowledged 2; the process "crashes" before acknowledging 3.
                first.ack(seen[1].cursor).await.unwrap();
                // An older cursor never moves the acknowledgement back.
                first.ack(seen[0].cursor).await.unwrap();
                let generation = first.generation();
                first.release().await.unwrap();
                let mut second = es::subscription::durable(&store, "billing", "worker-b").start().await.unwrap();
                assert!(second.generation() > generation);
                let mut resumed = Vec::new();
                for _ in 0..2 {
                    resumed.push(second.next().await.unwrap().unwrap());
                }
                assert_eq!(versions(&resumed), [3, 4], "not strictly after the last acknowledgement");
                // Another name has a cursor of its own.
                let mut other = es::subscription::durable(&store, "audit", "worker-a").start().await.unwrap();
                assert_eq!(other.next().await.unwrap().unwrap().stream_version, 1);
            }

            #[tokio::test]
            async fn one_process_holds_a_durable_subscription_and_a_superseded_one_is_refused() {
                use futures_util::StreamExt;
                let store = new_store().await;
                let ids = SequentialIds::new();
                store.append("Account", "dur-2", ExpectedVersion::NoStream, new_events(&ids, &deposits(2))).await.unwrap();
                let lease = std::time::Duration::from_millis(300);
                let mut holder = es::subscription::durable(&store, "mail", "a").lease(lease).start().await.unwrap();
                let event = holder.next().await.unwrap().unwrap();
                // While the holder's lease runs, another process waits.
                let waiting = es::subscription::durable(&store, "mail", "b")
                    .lease(lease)
                    .poll_interval(std::time::Duration::from_millis(20))
                    .start();
                let taken = tokio::time::timeout(std::time::Duration::from_millis(100), waiting).await;
                assert!(taken.is_err(), "a second holder got the subscription while the first held it");
                // The holder stops (stops polling, stops acknowledging) past its lease:
                // the other process takes over, and the stale holder's acknowledgement
                // is refused.
                let mut successor = es::subscription::durable(&store, "mail", "b")
                    .lease(lease)
                    .poll_interval(std::time::Duration::from_millis(20))
                    .start()
                    .await
                    .unwrap();
                assert!(successor.generation() > holder.generation());
                let error = holder.ack(event.cursor).await.unwrap_err();
                assert!(matches!(error, StoreError::StaleSubscription { .. }), "{error}");
                // The successor gets the event the stale holder never acknowledged.
                assert_eq!(successor.next().await.unwrap().unwrap().event_id, event.event_id);
                // The stale holder's stream ends with the same error at its next renewal.
                tokio::time::sleep(lease / 2).await;
                let ended = tokio::time::timeout(std::time::Duration::from_secs(5), holder.next()).await.unwrap();
                match ended {
                    Some(Err(StoreError::StaleSubscription { .. })) => assert!(holder.next().await.is_none()),
                    Some(Ok(next)) => {
                        // A page read before the takeover may still be handed out; its
                        // acknowledgement is refused all the same.
                        assert!(holder.ack(next.cursor).await.is_err());
                    }
                    other => panic!("expected the stale holder to be told, got {other:?}"),
                }
            }
        }
    };
}
