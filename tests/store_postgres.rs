//! The store conformance suite against PostgreSQL (feature `postgres`; needs the
//! server, see the README).

mod conformance;
mod pg;
mod support;

async fn new_store() -> es::postgres::PgStore {
    pg::fresh_store().await
}

conformance_suite!();
