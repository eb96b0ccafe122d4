//! The outbox lease on PostgreSQL (feature `postgres`; needs the server, see the
//! README): its generation fences relays whose lease has passed on, also when the
//! takeover and a stale acknowledgement race, and databases from before the
//! generation existed are migrated.

mod fencing;
mod pg;
mod support;

use std::time::Duration;

use es::relay::Outbox;
use es::{EventStore, ExpectedVersion, LeaseGeneration, StoreError};
use sqlx::AssertSqlSafe;

#[tokio::test]
async fn a_stale_lease_generation_cannot_acknowledge_or_record_failures() {
    let store = pg::fresh_store().await;
    fencing::a_stale_generation_cannot_acknowledge_or_record_failures(&store).await;
    pg::drop_tables(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_frozen_past_its_lease_is_refused_and_its_batch_delivered_again() {
    let store = pg::fresh_store().await;
    fencing::a_relay_frozen_past_its_lease_is_refused_and_its_batch_delivered_again(store.clone()).await;
    pg::drop_tables(&store).await;
}

/// A takeover and a stale acknowledgement in flight at the same moment: the
/// acknowledgement either commits before the takeover (so the new holder, looking
/// after it took over, no longer sees the row) or is refused; never deleted under the
/// old generation once the new one exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_racing_an_acknowledgement_never_lets_both_through() {
    let store = pg::fresh_store().await;
    let lease = Duration::from_millis(50);
    let mut refused = 0;
    for round in 0..20_u64 {
        let expected = if round == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(round) };
        store.append("Account", "a", expected, fencing::deposits(1)).await.unwrap();
        let position = store.fetch(1, es::Timestamp::EPOCH).await.unwrap()[0].position;
        let old = store.acquire_lease("old", lease).await.unwrap().expect("free after the last round");
        tokio::time::sleep(lease + Duration::from_millis(5)).await;
        // Both at once: the old holder acknowledges, the new one takes the lease and
        // looks at what is pending.
        let acknowledging = {
            let store = store.clone();
            tokio::spawn(async move { store.acknowledge(vec![position], old).await })
        };
        let taking = {
            let store = store.clone();
            tokio::spawn(async move {
                let generation = store.acquire_lease("new", Duration::from_secs(5)).await.unwrap();
                (generation, store.fetch(10, es::Timestamp::EPOCH).await.unwrap().len())
            })
        };
        let acknowledged = acknowledging.await.unwrap();
        let (new, pending_seen) = taking.await.unwrap();
        let new = new.expect("the old lease expired");
        assert!(new > old);
        match acknowledged {
            // It went through, so it committed before the takeover did, and the heir,
            // which looked after its takeover, cannot have seen the row.
            Ok(()) => {
                assert_eq!(pending_seen, 0, "round {round}: acknowledged under generation {old} after {new} took over");
            }
            Err(StoreError::StaleLease { generation }) => {
                assert_eq!(generation, old);
                assert_eq!(pending_seen, 1, "round {round}: refused, so the row must still be there");
                refused += 1;
            }
            Err(other) => panic!("round {round}: {other}"),
        }
        // Whatever happened, the current holder's acknowledgement settles the row.
        store.acknowledge(vec![position], new).await.unwrap();
        assert_eq!(store.status().await.unwrap().pending, 0);
        store.release_lease("new").await.unwrap();
    }
    println!("{refused} of 20 racing acknowledgements were refused");
    pg::drop_tables(&store).await;
}

/// A database written before the lease had a generation (schema version 2, a lease
/// row left behind by a relay) opens, is migrated, and fences from then on.
#[tokio::test]
async fn a_database_from_before_lease_generations_is_migrated_and_keeps_working() {
    let prefix = pg::unique_prefix();
    let store = pg::store_with_prefix(&prefix).await;
    store.append("Account", "a", ExpectedVersion::NoStream, fencing::deposits(2)).await.unwrap();
    // Back to the layout of version 2: migrations 1 and 2 are never edited, so this
    // is exactly what such a database holds.
    let (lease, schema) = (store.table("relay_lease"), store.table("schema"));
    let (views, commands, subscriptions) =
        (store.table("views"), store.table("commands"), store.table("subscriptions"));
    sqlx::raw_sql(AssertSqlSafe(format!(
        "ALTER TABLE {lease} DROP COLUMN generation;
         DROP TABLE {views};
         DROP TABLE {commands};
         DROP TABLE {subscriptions};
         DELETE FROM {schema} WHERE version > 2;
         INSERT INTO {lease} (id, owner, expires_at) VALUES (1, 'relay-of-old', 0);"
    )))
    .execute(store.pool())
    .await
    .unwrap();
    drop(store);

    let store = pg::store_with_prefix(&prefix).await;
    let version: i32 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT MAX(version) FROM {schema}")))
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(version, 6);
    let generation = store.acquire_lease("new", Duration::from_secs(5)).await.unwrap().expect("the old lease expired");
    assert_eq!(generation, LeaseGeneration::new(1), "the old lease row counts as generation 0");
    let positions: Vec<u64> = store.fetch(10, es::Timestamp::EPOCH).await.unwrap().iter().map(|p| p.position).collect();
    assert!(matches!(
        store.acknowledge(positions.clone(), LeaseGeneration::new(0)).await,
        Err(StoreError::StaleLease { .. })
    ));
    store.acknowledge(positions, generation).await.unwrap();
    assert_eq!(store.status().await.unwrap().pending, 0);
    pg::drop_tables(&store).await;
}
