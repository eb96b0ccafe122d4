//! Durable subscriptions of the in-memory store: leases and acknowledged cursors
//! under the store's lock.

use std::time::{Duration, Instant};

use super::MemoryStore;
use crate::relay::LeaseGeneration;
use crate::store::{Cursor, StoreError};
use crate::subscription::{Claim, DurableStore};

/// One durable subscription's lease and cursor.
#[derive(Debug, Clone)]
pub(super) struct Held {
    owner: String,
    generation: LeaseGeneration,
    expires_at: Instant,
    acknowledged: Cursor,
}

impl DurableStore for MemoryStore {
    async fn claim_subscription(&self, name: &str, owner: &str, lease: Duration) -> Result<Option<Claim>, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let held = inner.subscriptions.entry(name.to_owned()).or_insert_with(|| Held {
            owner: owner.to_owned(),
            generation: LeaseGeneration::new(0),
            expires_at: now,
            acknowledged: Cursor::START,
        });
        let renewal = held.owner == owner && held.expires_at > now && held.generation.get() > 0;
        if !renewal && held.expires_at > now {
            return Ok(None);
        }
        if !renewal {
            held.generation = LeaseGeneration::new(held.generation.get() + 1);
            owner.clone_into(&mut held.owner);
        }
        held.expires_at = now + lease;
        Ok(Some(Claim { generation: held.generation, acknowledged: held.acknowledged }))
    }

    async fn acknowledge_subscription(
        &self,
        name: &str,
        generation: LeaseGeneration,
        cursor: Cursor,
        lease: Duration,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        match inner.subscriptions.get_mut(name) {
            Some(held) if held.generation == generation => {
                held.acknowledged = held.acknowledged.max(cursor);
                held.expires_at = Instant::now() + lease;
                Ok(())
            }
            _ => Err(StoreError::StaleSubscription { name: name.to_owned(), generation }),
        }
    }

    async fn release_subscription(&self, name: &str, generation: LeaseGeneration) -> Result<(), StoreError> {
        if let Some(held) = self.lock().subscriptions.get_mut(name).filter(|held| held.generation == generation) {
            held.expires_at = Instant::now();
        }
        Ok(())
    }
}
