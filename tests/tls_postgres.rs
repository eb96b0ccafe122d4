//! Connections to PostgreSQL over TLS (rustls): a managed server that requires
//! `sslmode=require` is reachable, and certificates are verified when the URL asks for
//! it. Runs against the local test server, which must accept TLS connections.

mod pg;
mod support;

use es::postgres::PgStore;
use es::{Aggregate, EventStore, ExpectedVersion, IdSource, Metadata, NewEvent, RandomIds, StoreError, Timestamp};
use support::{Account, AccountEvent};

fn with_params(params: &str) -> String {
    let url = pg::url();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{params}")
}

async fn connection_uses_tls(store: &PgStore) -> bool {
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .expect("pg_stat_ssl is readable")
}

#[tokio::test]
async fn sslmode_require_connects_over_tls_and_the_store_works() {
    let store = PgStore::open(&with_params("sslmode=require")).await.unwrap_or_else(|error| {
        panic!("cannot connect with sslmode=require to {}: {error}; the server must accept TLS", pg::url())
    });
    assert!(connection_uses_tls(&store).await, "sslmode=require must give an encrypted connection");

    let stream = pg::unique_prefix();
    let event = NewEvent::encode(
        &AccountEvent::Deposited { amount: 7 },
        RandomIds.next_id(),
        Timestamp::EPOCH,
        Metadata::default(),
    )
    .unwrap();
    store.append(Account::stream_type(), &stream, ExpectedVersion::NoStream, vec![event]).await.unwrap();
    let stored = store.read_stream(Account::stream_type(), &stream, 1).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(es::rehydrate::<Account>(&stream, stored).unwrap().state().balance, 7);
}

#[tokio::test]
async fn sslmode_disable_connects_in_plain_text() {
    let store = PgStore::open(&with_params("sslmode=disable")).await.unwrap();
    assert!(!connection_uses_tls(&store).await);
}

#[tokio::test]
async fn verify_full_refuses_a_server_certificate_that_no_trusted_root_signed() {
    // The test server presents a self-signed certificate that no root of the
    // system's store signed: `verify-full` must refuse it (an error, not a panic),
    // where `require`, which encrypts without verifying, accepts it.
    match PgStore::open(&with_params("sslmode=verify-full")).await {
        Err(error @ StoreError::Backend { .. }) => {
            let message = error.to_string();
            assert!(message.contains("certificate"), "expected a certificate error, got: {message}");
        }
        Err(other) => panic!("expected a backend (TLS) error, got {other:?}"),
        Ok(_) => panic!("a server certificate that no trusted root signed was accepted"),
    }
}
