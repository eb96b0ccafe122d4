use std::collections::BTreeMap;

use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum VoteEvent {
    Voted { choice: String },
}

#[aggregate]
#[derive(Debug)]
pub struct Tally<K> {
    counts: BTreeMap<K, u32>,
}

// A hand-written initial state (a derive would ask `K: Default`), checked.
#[es::pure]
impl<K> Default for Tally<K> {
    fn default() -> Self {
        Tally { counts: BTreeMap::new() }
    }
}

#[aggregate]
impl<K> Aggregate for Tally<K>
where
    K: Ord + From<String> + Send + 'static,
{
    type Event = VoteEvent;

    fn apply(&mut self, event: &VoteEvent) {
        let VoteEvent::Voted { choice } = event;
        *self.counts.entry(K::from(choice.clone())).or_default() += 1;
    }
}

fn main() {
    let mut tally = Tally::<String>::default();
    for choice in ["tea", "coffee", "tea"] {
        tally.apply(&VoteEvent::Voted { choice: choice.into() });
    }
    assert_eq!(tally.counts.get("tea"), Some(&2));
    assert_eq!(tally.counts.len(), 2);
}
