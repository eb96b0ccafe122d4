use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum ScoreEvent {
    Scored { points: u32 },
}

#[aggregate]
#[derive(Debug, Default)]
pub struct Scoreboard {
    points: u32,
    level: u32,
}

impl Scoreboard {
    #[es::pure]
    fn level_up(&mut self) {
        self.level = self.points / 100;
    }

    pub fn points(&self) -> u32 {
        self.points
    }
}

#[aggregate]
impl Aggregate for Scoreboard {
    type Event = ScoreEvent;

    fn apply(&mut self, event: &ScoreEvent) {
        let ScoreEvent::Scored { points } = event;
        self.points += points;
        self.level_up();
    }
}

fn main() {
    let mut board = Scoreboard::default();
    for points in [40, 70, 95] {
        board.apply(&ScoreEvent::Scored { points });
    }
    assert_eq!(board.points(), 205);
    assert_eq!(board.level, 2);
}
