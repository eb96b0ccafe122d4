//! The read-model suite against PostgreSQL (feature `postgres`; needs the server, see
//! the README). Each store gets tables of its own.

mod pg;
mod read_models;

async fn new_store() -> es::postgres::PgStore {
    pg::fresh_store().await
}

read_model_suite!(es::postgres::ProjectionRunner);

async fn clean_up(store: &es::postgres::PgStore) {
    pg::drop_tables(store).await;
}
