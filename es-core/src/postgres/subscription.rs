//! Durable subscriptions of the PostgreSQL store: each lease change and
//! acknowledgement is one statement on the subscription's row, so concurrent holders
//! serialise on its row lock.

use std::time::Duration;

use sqlx::{AssertSqlSafe, Row};

use super::{PgStore, backend};
use crate::clock::now_micros;
use crate::relay::LeaseGeneration;
use crate::sql::stored;
use crate::store::{Cursor, StoreError};
use crate::subscription::{Claim, DurableStore};

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

impl DurableStore for PgStore {
    async fn claim_subscription(&self, name: &str, owner: &str, lease: Duration) -> Result<Option<Claim>, StoreError> {
        // A renewal by the holder keeps the generation; a takeover (or the holder
        // coming back after its lease ran out) makes the next one.
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {t} AS s (name, owner, generation, expires_at, position, updated_at)
             VALUES ($1, $2, 1, $3 + $4, 0, $3)
             ON CONFLICT (name) DO UPDATE SET
                 generation = CASE WHEN s.owner = excluded.owner AND s.expires_at > $3
                                   THEN s.generation ELSE s.generation + 1 END,
                 owner = excluded.owner, expires_at = excluded.expires_at, updated_at = $3
             WHERE s.owner = excluded.owner OR s.expires_at <= $3
             RETURNING s.generation, s.transaction_id::text::int8, s.position",
            t = self.sql.subscriptions
        )))
        .bind(name)
        .bind(owner)
        .bind(now_micros())
        .bind(micros(lease))
        .fetch_optional(self.pool())
        .await
        .map_err(backend)?;
        row.map(|row| {
            let corrupt =
                |reason: String| StoreError::Corrupt { location: format!("durable subscription {name}"), reason };
            let number = |index: usize, what: &str| -> Result<u64, StoreError> {
                stored::count(row.try_get::<i64, _>(index).map_err(backend)?, what).map_err(corrupt)
            };
            Ok(Claim {
                generation: LeaseGeneration::new(number(0, "generation")?),
                acknowledged: Cursor { commit: number(1, "transaction id")?, position: number(2, "position")? },
            })
        })
        .transpose()
    }

    async fn acknowledge_subscription(
        &self,
        name: &str,
        generation: LeaseGeneration,
        cursor: Cursor,
        lease: Duration,
    ) -> Result<(), StoreError> {
        let now = now_micros();
        let moved = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {t} SET
                 transaction_id = CASE WHEN ($3::text::xid8, $4) > (transaction_id, position) THEN $3::text::xid8 ELSE transaction_id END,
                 position = CASE WHEN ($3::text::xid8, $4) > (transaction_id, position) THEN $4 ELSE position END,
                 expires_at = $5 + $6, updated_at = $5
             WHERE name = $1 AND generation = $2",
            t = self.sql.subscriptions
        )))
        .bind(name)
        .bind(i64::try_from(generation.get()).unwrap_or(i64::MAX))
        .bind(cursor.commit.to_string())
        .bind(i64::try_from(cursor.position).unwrap_or(i64::MAX))
        .bind(now)
        .bind(micros(lease))
        .execute(self.pool())
        .await
        .map_err(backend)?
        .rows_affected();
        if moved == 0 {
            return Err(StoreError::StaleSubscription { name: name.to_owned(), generation });
        }
        Ok(())
    }

    async fn release_subscription(&self, name: &str, generation: LeaseGeneration) -> Result<(), StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET expires_at = 0 WHERE name = $1 AND generation = $2",
            self.sql.subscriptions
        )))
        .bind(name)
        .bind(i64::try_from(generation.get()).unwrap_or(i64::MAX))
        .execute(self.pool())
        .await
        .map_err(backend)?;
        Ok(())
    }
}
