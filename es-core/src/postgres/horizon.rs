//! How far readers of the global log can read, and which transactions hold them back:
//! the status an operator looks at when projections stop moving.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Row};

use super::{PgStore, backend};
use crate::clock::Timestamp;
use crate::sql::stored;
use crate::store::StoreError;

/// How far readers of the global log ([`read_all`](crate::EventStore::read_all),
/// projections) can read now, and the open transactions that hold them back.
///
/// Readers read the events whose commit-order key ([`Cursor::commit`]) is below
/// [`horizon`](Self::horizon): below it every transaction that may still append has
/// finished, so nothing can appear behind a reader. The transactions that set the
/// horizon are those that have appended (or are about to: they hold or wait for the
/// store's append lock) and are still open. Transactions in other databases of the
/// server, and transactions in this one that never append, hold no reader back.
///
/// On a standby (a server in recovery) the advisory locks of the primary cannot be
/// seen: readers there wait for the oldest transaction running anywhere on the
/// primary, `horizon` is that transaction's id and `held_back_by` stays empty.
///
/// [`Cursor::commit`]: crate::Cursor::commit
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadHorizon {
    /// Readers read events with a commit-order key below this one.
    pub horizon: u64,
    /// Committed events at or above the horizon: readers get them once the
    /// transactions in [`held_back_by`](Self::held_back_by) end.
    pub waiting_events: u64,
    /// The open transactions that hold readers back, oldest first; empty when none
    /// does.
    pub held_back_by: Vec<HoldingTransaction>,
}

impl ReadHorizon {
    /// Whether an open transaction holds readers back.
    #[must_use]
    pub fn is_held_back(&self) -> bool {
        !self.held_back_by.is_empty()
    }
}

/// An open transaction that holds readers of the global log back, as
/// `pg_stat_activity` describes its backend. The details are `None` when the
/// transaction ended while the status was read, or when the database role may not see
/// other roles' sessions (grant it `pg_read_all_stats`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HoldingTransaction {
    /// The transaction id.
    pub transaction_id: u64,
    /// The process id of its backend (`pg_terminate_backend(pid)` ends it).
    pub pid: Option<i32>,
    /// The client's `application_name`.
    pub application_name: Option<String>,
    /// The backend's state: `active`, `idle in transaction`, ...
    pub state: Option<String>,
    /// When the transaction began.
    pub transaction_started: Option<Timestamp>,
    /// How long it has been open.
    pub age: Option<Duration>,
    /// When its current (or last) statement began.
    pub query_started: Option<Timestamp>,
    /// Whether it is waiting for the append lock (which only an exclusive holder of the
    /// same lock, never another append, can make it do).
    pub waiting_for_lock: bool,
}

impl PgStore {
    /// How far readers of the global log can read now, and which open transactions
    /// hold them back (by process id, age, application name), so that an operator can
    /// act when projections stop moving. One query.
    ///
    /// ```no_run
    /// # async fn demo(store: es::postgres::PgStore) -> Result<(), es::StoreError> {
    /// let horizon = store.read_horizon().await?;
    /// for tx in &horizon.held_back_by {
    ///     eprintln!(
    ///         "{} events wait for transaction {} (pid {:?}, {:?}, open for {:?})",
    ///         horizon.waiting_events, tx.transaction_id, tx.pid, tx.application_name, tx.age
    ///     );
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn read_horizon(&self) -> Result<ReadHorizon, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(Arc::clone(&self.sql.horizon_status)))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let corrupt = |reason: String| StoreError::Corrupt { location: "the read horizon".into(), reason };
        let mut status = ReadHorizon { horizon: 0, waiting_events: 0, held_back_by: Vec::new() };
        for row in &rows {
            status.horizon = stored::commit(&row.try_get::<String, _>(0).map_err(backend)?).map_err(corrupt)?;
            status.waiting_events = stored::count(row.try_get(1).map_err(backend)?, "count").map_err(corrupt)?;
            let Some(transaction) = row.try_get::<Option<String>, _>(2).map_err(backend)? else { continue };
            let micros = |index: usize| row.try_get::<Option<i64>, _>(index).map_err(backend);
            status.held_back_by.push(HoldingTransaction {
                transaction_id: stored::commit(&transaction).map_err(corrupt)?,
                pid: row.try_get(3).map_err(backend)?,
                application_name: row.try_get(4).map_err(backend)?,
                state: row.try_get(5).map_err(backend)?,
                transaction_started: micros(6)?.map(Timestamp::from_unix_micros),
                query_started: micros(7)?.map(Timestamp::from_unix_micros),
                age: micros(8)?.map(|age| Duration::from_micros(u64::try_from(age).unwrap_or(0))),
                waiting_for_lock: row.try_get(9).map_err(backend)?,
            });
        }
        Ok(status)
    }
}
