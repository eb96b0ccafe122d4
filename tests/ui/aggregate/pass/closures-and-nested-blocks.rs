use std::collections::BTreeSet;

use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum TeamEvent {
    Joined { members: Vec<String> },
    Left { member: String },
}

#[aggregate]
#[derive(Debug, Default)]
pub struct Team {
    members: BTreeSet<String>,
    longest_name: usize,
}

#[aggregate]
impl Aggregate for Team {
    type Event = TeamEvent;

    fn apply(&mut self, event: &TeamEvent) {
        let normalise = |name: &str| name.trim().to_lowercase();
        match event {
            TeamEvent::Joined { members } => {
                let names: Vec<String> =
                    members.iter().map(|name| normalise(name)).filter(|name| !name.is_empty()).collect();
                self.members.extend(names);
            }
            TeamEvent::Left { member } => {
                let Some(name) = self.members.iter().find(|known| **known == normalise(member)).cloned() else {
                    return;
                };
                self.members.remove(&name);
            }
        }
        self.longest_name = self.members.iter().map(String::len).max().unwrap_or(0);
    }
}

fn main() {
    let mut team = Team::default();
    for event in [
        TeamEvent::Joined { members: vec![" Ada ".into(), "Grace".into(), "  ".into()] },
        TeamEvent::Left { member: "ADA".into() },
        TeamEvent::Left { member: "nobody".into() },
    ] {
        team.apply(&event);
    }
    assert_eq!(team.members.iter().collect::<Vec<_>>(), ["grace"]);
    assert_eq!(team.longest_name, 5);
}
