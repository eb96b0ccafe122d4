//! Rows written behind the library's back, on SQLite: the shared suite, and the
//! projection runner's policy for unreadable rows.

mod corrupt_rows;
mod support;

use es::sqlite::SqliteStore;

async fn new_store() -> SqliteStore {
    let dir = tempfile::tempdir().unwrap().keep();
    SqliteStore::open(dir.join("events.db")).await.unwrap()
}

async fn write_row(store: &SqliteStore, stream_type: &str, stream_id: &str, version: i64) {
    let (stream_type, stream_id) = (stream_type.to_owned(), stream_id.to_owned());
    store
        .transaction(move |tx| {
            tx.execute(
                "INSERT INTO es_events (event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload)
                 VALUES (randomblob(16), ?1, ?2, ?3, 'Deposited', 1, 0, NULL, '{\"amount\":1}')",
                rusqlite::params![stream_type, stream_id, version],
            )?;
            tx.execute(
                "INSERT INTO es_outbox (position, stream_type, stream_id) VALUES (last_insert_rowid(), ?1, ?2)",
                rusqlite::params![stream_type, stream_id],
            )?;
            Ok::<_, es::StoreError>(())
        })
        .await
        .unwrap();
}

async fn write_snapshot_row(store: &SqliteStore, stream_id: &str, version: i64, state: &str) {
    let (stream_id, state) = (stream_id.to_owned(), state.to_owned());
    store
        .transaction(move |tx| {
            tx.execute(
                "INSERT INTO es_snapshots (stream_type, stream_id, stream_version, schema_version, state, taken_at)
                 VALUES ('SnapshottedAccount', ?1, ?2, 2, ?3, 0)",
                rusqlite::params![stream_id, version, state],
            )?;
            Ok::<_, es::StoreError>(())
        })
        .await
        .unwrap();
}

async fn count_rows(store: &SqliteStore, stream_id: &str) -> i64 {
    let stream_id = stream_id.to_owned();
    store
        .read(move |c| c.query_row("SELECT COUNT(*) FROM es_events WHERE stream_id = ?1", [stream_id], |r| r.get(0)))
        .await
        .unwrap()
}

async fn break_metadata(store: &SqliteStore, stream_id: &str, version: i64) {
    let stream_id = stream_id.to_owned();
    store
        .transaction(move |tx| {
            tx.execute(
                "UPDATE es_events SET metadata = '{not json' WHERE stream_type = 'Account' AND stream_id = ?1 AND stream_version = ?2",
                rusqlite::params![stream_id, version],
            )?;
            Ok::<_, es::StoreError>(())
        })
        .await
        .unwrap();
}

corrupt_rows_suite!();

mod projections {
    use super::{new_store, write_row};
    use es::projection::{HandlerError, OnError};
    use es::sqlite::{Projection, ProjectionRunner};
    use es::{EventStore, ExpectedVersion, IdSource, Metadata, NewEvent, RandomIds, StoredEvent, Timestamp};

    struct Seen;

    impl Projection for Seen {
        fn name(&self) -> &'static str {
            "seen"
        }
        fn setup(&mut self, tx: &rusqlite::Connection) -> Result<(), HandlerError> {
            tx.execute_batch("CREATE TABLE IF NOT EXISTS seen (stream_id TEXT, version INTEGER)")?;
            Ok(())
        }
        fn handle(&mut self, tx: &rusqlite::Connection, event: &StoredEvent) -> Result<(), HandlerError> {
            tx.execute("INSERT INTO seen VALUES (?1, ?2)", rusqlite::params![event.stream_id, event.stream_version])?;
            Ok(())
        }
        fn reset(&mut self, tx: &rusqlite::Connection) -> Result<(), HandlerError> {
            tx.execute("DELETE FROM seen", [])?;
            Ok(())
        }
    }

    fn deposit() -> Vec<NewEvent> {
        let event = support_deposit();
        vec![NewEvent::encode(&event, RandomIds.next_id(), Timestamp::EPOCH, Metadata::default()).unwrap()]
    }

    fn support_deposit() -> crate::support::AccountEvent {
        crate::support::AccountEvent::Deposited { amount: 1 }
    }

    #[tokio::test]
    async fn a_projection_records_and_skips_a_row_below_version_one_and_goes_on() {
        for version in [0, -1] {
            let store = new_store().await;
            store.append("Account", "before", ExpectedVersion::NoStream, deposit()).await.unwrap();
            write_row(&store, "Account", "bad", version).await;
            store.append("Account", "after", ExpectedVersion::NoStream, deposit()).await.unwrap();
            let mut runner = ProjectionRunner::new(store.clone(), Seen).on_error(OnError::RecordAndSkip);
            let report = runner.catch_up().await.unwrap();
            assert_eq!((report.applied, report.skipped), (2, 1));
            let seen: Vec<String> = store
                .read(|c| {
                    c.prepare("SELECT stream_id FROM seen ORDER BY rowid")?.query_map([], |r| r.get(0))?.collect()
                })
                .await
                .unwrap();
            assert_eq!(seen, ["before", "after"]);
            let reason: String =
                store.read(|c| c.query_row("SELECT reason FROM es_skipped", [], |r| r.get(0))).await.unwrap();
            assert!(reason.contains(&format!("version {version}")), "{reason}");
        }
    }

    #[tokio::test]
    async fn a_projection_stops_on_a_row_below_version_one_under_stop() {
        let store = new_store().await;
        write_row(&store, "Account", "bad", 0).await;
        let mut runner = ProjectionRunner::new(store.clone(), Seen);
        let error = runner.catch_up().await.unwrap_err().to_string();
        assert!(error.contains("bad") && error.contains("version 0"), "{error}");
    }
}

/// SQLite keeps whatever type a value was written with: a column of the wrong type is
/// corrupt like a value out of range, for loads and for reads.
mod wrongly_typed_columns {
    use super::new_store;
    use es::{
        Cursor, EventStore, ExpectedVersion, IdSource, LoadError, Metadata, NewEvent, RandomIds, StoreError, Timestamp,
    };

    #[tokio::test]
    async fn a_column_of_the_wrong_type_is_corrupt_not_a_driver_error() {
        let cases = [
            ("stream_version", "'two'"),
            ("stream_version", "1.5"),
            ("occurred_at", "'yesterday'"),
            ("event_type", "x'00ff'"),
            ("schema_version", "'one'"),
        ];
        for (column, value) in cases {
            let store = new_store().await;
            let event = crate::support::AccountEvent::Deposited { amount: 1 };
            let events =
                vec![NewEvent::encode(&event, RandomIds.next_id(), Timestamp::EPOCH, Metadata::default()).unwrap()];
            store.append("Account", "typed", ExpectedVersion::NoStream, events).await.unwrap();
            let sql = format!("UPDATE es_events SET {column} = {value}");
            store.transaction(move |tx| tx.execute_batch(&sql).map_err(StoreError::from)).await.unwrap();
            let corrupt = |error: &StoreError| matches!(error, StoreError::Corrupt { .. });
            match store.load::<crate::support::Account>("typed").await {
                Err(LoadError::Store(error)) => assert!(corrupt(&error), "{column} = {value}: {error:?}"),
                other => panic!("{column} = {value}: expected a corrupt row, got {other:?}"),
            }
            let error = store.read_stream("Account", "typed", 1).await.unwrap_err();
            assert!(corrupt(&error), "{column} = {value}: {error:?}");
            let error = store.read_all(Cursor::START, 10).await.unwrap_err();
            assert!(corrupt(&error), "{column} = {value}: {error:?}");
            if column == "stream_version" {
                let event = crate::support::AccountEvent::Deposited { amount: 1 };
                let events =
                    vec![NewEvent::encode(&event, RandomIds.next_id(), Timestamp::EPOCH, Metadata::default()).unwrap()];
                let error = store.append("Account", "typed", ExpectedVersion::Any, events).await.unwrap_err();
                assert!(corrupt(&error), "{column} = {value}: {error:?}");
            }
        }
    }
}
