use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum LampEvent {
    Switched { on: bool },
}

// `Default` derived under its full path, in a second derive list, on an enum.
#[aggregate]
#[derive(Debug, PartialEq)]
#[derive(core::default::Default)]
pub enum Lamp {
    #[default]
    Off,
    On,
}

#[aggregate]
impl Aggregate for Lamp {
    type Event = LampEvent;

    fn apply(&mut self, event: &LampEvent) {
        let LampEvent::Switched { on } = event;
        *self = if *on { Lamp::On } else { Lamp::Off };
    }
}

fn main() {
    let mut lamp = Lamp::default();
    lamp.apply(&LampEvent::Switched { on: true });
    assert_eq!(lamp, Lamp::On);
}
