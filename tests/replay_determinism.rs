//! `es::testing::assert_replay_is_deterministic` is the runtime backstop of the purity
//! check: it must fail on handlers the syntactic check lets through (a trusted function
//! that reads a global, a state that depends on `HashMap` iteration order) and on a
//! state that does not survive its own snapshot, and pass on honest aggregates.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use es::testing::assert_replay_is_deterministic;
use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
enum TickEvent {
    Ticked { n: u32 },
}

fn ticks(count: u32) -> Vec<TickEvent> {
    (0..count).map(|n| TickEvent::Ticked { n }).collect()
}

// ---------------------------------------------------------------------------------
// A global counter, read through a function the aggregate trusts.

static GLOBAL_TICKS: AtomicU64 = AtomicU64::new(0);

mod clockwork {
    /// Reads and bumps a global: impure, but vouched for in `trust(...)`.
    pub fn next_tick() -> u64 {
        super::GLOBAL_TICKS.fetch_add(1, super::Ordering::Relaxed)
    }
}

#[aggregate]
#[derive(Debug, Default, PartialEq)]
struct GlobalCounter {
    seen: Vec<u64>,
}

#[aggregate(trust(clockwork::next_tick))]
impl Aggregate for GlobalCounter {
    type Event = TickEvent;

    fn apply(&mut self, _: &TickEvent) {
        self.seen.push(clockwork::next_tick());
    }
}

#[test]
#[should_panic(expected = "folding the same 3 events twice gave different states")]
fn a_global_read_through_a_trusted_function_fails_the_replay_check() {
    assert_replay_is_deterministic::<GlobalCounter>(&ticks(3));
}

// The same, through the escape hatch.

#[aggregate]
#[derive(Debug, Default, PartialEq)]
struct HatchCounter {
    seen: Vec<u64>,
}

#[aggregate]
impl Aggregate for HatchCounter {
    type Event = TickEvent;

    fn apply(&mut self, _: &TickEvent) {
        #[es::allow_impure(reason = "deliberately impure: the runtime check must catch it")]
        let tick = GLOBAL_TICKS.fetch_add(1, Ordering::Relaxed);
        self.seen.push(tick);
    }
}

#[test]
#[should_panic(expected = "folding the same 2 events twice gave different states")]
fn a_global_read_through_the_escape_hatch_fails_the_replay_check() {
    assert_replay_is_deterministic::<HatchCounter>(&ticks(2));
}

// ---------------------------------------------------------------------------------
// `HashMap` iteration order: every fresh map hashes with other random keys.

#[aggregate]
#[derive(Debug, Default, PartialEq)]
struct Tally {
    counts: HashMap<u32, u32>,
    /// The keys in iteration order: differs between two maps with the same content.
    order: Vec<u32>,
}

#[aggregate]
impl Aggregate for Tally {
    type Event = TickEvent;

    fn apply(&mut self, event: &TickEvent) {
        let TickEvent::Ticked { n } = event;
        *self.counts.entry(*n).or_default() += 1;
        self.order = self.counts.keys().copied().collect();
    }
}

/// With 256 keys, two maps with independent hash keys iterate in the same order with a
/// probability far below one in 10^100: the test is not flaky.
#[test]
#[should_panic(expected = "folding the same 256 events twice gave different states")]
fn a_state_that_depends_on_hash_map_order_fails_the_replay_check() {
    assert_replay_is_deterministic::<Tally>(&ticks(256));
}

// ---------------------------------------------------------------------------------
// Snapshots: the state must survive its own round trip.

#[aggregate]
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Forgetful {
    total: u64,
    /// Left out of the snapshot: a state loaded from a snapshot loses it.
    #[serde(skip)]
    last: u32,
}

#[aggregate(snapshot(version = 1, every = 10))]
impl Aggregate for Forgetful {
    type Event = TickEvent;

    fn apply(&mut self, event: &TickEvent) {
        let TickEvent::Ticked { n } = event;
        self.total += u64::from(*n);
        self.last = *n;
    }
}

#[test]
#[should_panic(expected = "the state changes in a round trip through its snapshot")]
fn a_state_that_loses_a_field_in_its_snapshot_fails_the_replay_check() {
    assert_replay_is_deterministic::<Forgetful>(&ticks(4));
}

// ---------------------------------------------------------------------------------
// Honest aggregates pass.

#[aggregate]
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Ledger {
    total: u64,
    by_parity: std::collections::BTreeMap<bool, u32>,
    counts: HashMap<u32, u32>,
}

#[aggregate(snapshot(version = 1, every = 10))]
impl Aggregate for Ledger {
    type Event = TickEvent;

    fn apply(&mut self, event: &TickEvent) {
        let TickEvent::Ticked { n } = event;
        self.total += u64::from(*n);
        *self.by_parity.entry(n % 2 == 0).or_default() += 1;
        *self.counts.entry(*n).or_default() += 1;
    }
}

#[test]
fn an_honest_aggregate_with_snapshots_passes_the_replay_check() {
    assert_replay_is_deterministic::<Ledger>(&ticks(256));
}
