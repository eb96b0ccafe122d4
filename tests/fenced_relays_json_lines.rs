//! Relay processes frozen past their lease (SIGSTOP, SIGCONT) and killed (SIGKILL)
//! while a sink wrapper loses a message, delivering to one JSON-lines file: every
//! event arrives, each stream's first arrivals are in version order, the frozen
//! relay's acknowledgement is refused and its batch delivered again under a newer
//! lease generation. The scenario is in `tests/fenced/mod.rs`.

mod fenced;
mod fencing;
mod support;

use std::collections::HashSet;
use std::path::Path;

use es::LeaseGeneration;
use es::sink::JsonLinesSink;
use es::sqlite::SqliteStore;
use support::process::child_role;

const TEST: &str = "relays_frozen_and_killed_while_a_message_is_lost_deliver_every_event_in_stream_order";

fn sink_path(dir: &Path) -> std::path::PathBuf {
    dir.join("sink.jsonl")
}

#[test]
fn relays_frozen_and_killed_while_a_message_is_lost_deliver_every_event_in_stream_order() {
    if let Some(dir) = child_role(fenced::CHILD) {
        let dir = Path::new(&dir);
        return fenced::child(dir, || async { JsonLinesSink::open(sink_path(dir)).unwrap() });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(fenced::database(dir.path())).await.unwrap();
        let events = fenced::seed(&store).await;
        let same = |command| command;
        let outcome = fenced::freeze_kill_and_take_over(TEST, dir.path(), &store, Some(12), &same, &same, &same).await;
        fenced::assert_generations(&outcome, true);

        // Whole lines only: nobody was killed inside a write here, but a reader skips
        // a torn line all the same.
        let text = std::fs::read_to_string(sink_path(dir.path())).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
        let by_id = fenced::by_id(&events);
        let arrivals: Vec<(uuid::Uuid, LeaseGeneration)> = lines
            .iter()
            .map(|line| {
                let id: uuid::Uuid = line["event_id"].as_str().unwrap().parse().unwrap();
                let generation = LeaseGeneration::new(line["lease_generation"].as_u64().expect("lease_generation"));
                (id, generation)
            })
            .collect();
        let received: Vec<es::StoredEvent> = arrivals.iter().map(|(id, _)| by_id[id].clone()).collect();
        let repeats = fencing::assert_complete_and_in_stream_order(&received, &events);

        // The frozen batch is in the file twice: written by A under the generation it
        // froze with, and again by a later holder, since A's acknowledgement was refused.
        assert_eq!(outcome.held.len(), 8);
        for id in &outcome.held {
            let generations: HashSet<LeaseGeneration> =
                arrivals.iter().filter(|(seen, _)| seen == id).map(|(_, g)| *g).collect();
            assert!(generations.contains(&outcome.frozen), "{id} was not written by the frozen relay");
            assert!(generations.iter().any(|g| *g > outcome.frozen), "{id} was not delivered again after A froze");
        }
        // The lost message was delivered later, once.
        let lost = outcome.b.dropped.unwrap();
        assert!(arrivals.iter().any(|(id, _)| *id == lost), "the lost message never arrived");
        println!("{} lines for {} events ({repeats} repeats)", lines.len(), events.len());
    });
}
