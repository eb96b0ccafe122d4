//! Durable subscriptions of the SQLite store: each lease change and acknowledgement
//! is one write transaction, so they are serialised with each other and with appends.

use std::time::Duration;

use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, backend, now_micros};
use crate::relay::LeaseGeneration;
use crate::sql::stored;
use crate::store::{Cursor, StoreError};
use crate::subscription::{Claim, DurableStore};

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

impl DurableStore for SqliteStore {
    async fn claim_subscription(&self, name: &str, owner: &str, lease: Duration) -> Result<Option<Claim>, StoreError> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        self.write_with_tables(move |tx, tables| {
            let now = now_micros();
            // A renewal by the holder keeps the generation; a takeover (or the holder
            // coming back after its lease ran out) makes the next one.
            let row = tx
                .query_row(
                    &format!(
                        "INSERT INTO {subscriptions} (name, owner, generation, expires_at, position, updated_at)
                         VALUES (?1, ?2, 1, ?3 + ?4, 0, ?3)
                         ON CONFLICT (name) DO UPDATE SET
                             generation = CASE WHEN owner = excluded.owner AND expires_at > ?3
                                               THEN generation ELSE generation + 1 END,
                             owner = excluded.owner, expires_at = excluded.expires_at, updated_at = ?3
                         WHERE owner = excluded.owner OR expires_at <= ?3
                         RETURNING generation, position",
                        subscriptions = tables.subscriptions
                    ),
                    params![name, owner, now, micros(lease)],
                    |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
                )
                .optional()
                .map_err(backend)?;
            row.map(|(generation, position)| {
                let corrupt =
                    |reason: String| StoreError::Corrupt { location: format!("durable subscription {name}"), reason };
                Ok(Claim {
                    generation: LeaseGeneration::new(stored::count(generation, "generation").map_err(corrupt)?),
                    acknowledged: Cursor::at_position(stored::count(position, "position").map_err(corrupt)?),
                })
            })
            .transpose()
        })
        .await
    }

    async fn acknowledge_subscription(
        &self,
        name: &str,
        generation: LeaseGeneration,
        cursor: Cursor,
        lease: Duration,
    ) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.write_with_tables(move |tx, tables| {
            let now = now_micros();
            let moved = tx
                .execute(
                    &format!(
                        "UPDATE {} SET position = MAX(position, ?3), expires_at = ?4 + ?5, updated_at = ?4
                         WHERE name = ?1 AND generation = ?2",
                        tables.subscriptions
                    ),
                    params![
                        name,
                        i64::try_from(generation.get()).unwrap_or(i64::MAX),
                        i64::try_from(cursor.position).unwrap_or(i64::MAX),
                        now,
                        micros(lease)
                    ],
                )
                .map_err(backend)?;
            if moved == 0 {
                return Err(StoreError::StaleSubscription { name, generation });
            }
            Ok(())
        })
        .await
    }

    async fn release_subscription(&self, name: &str, generation: LeaseGeneration) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.write_with_tables(move |tx, tables| {
            tx.execute(
                &format!("UPDATE {} SET expires_at = 0 WHERE name = ?1 AND generation = ?2", tables.subscriptions),
                params![name, i64::try_from(generation.get()).unwrap_or(i64::MAX)],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }
}
