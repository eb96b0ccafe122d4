use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum LampEvent {
    Switched { on: bool },
}

#[aggregate]
#[derive(Debug, Default)]
pub struct Lamp {
    on: bool,
    switches: u32,
}

#[aggregate]
impl Aggregate for Lamp {
    type Event = LampEvent;

    fn apply(&mut self, event: &LampEvent) {
        let LampEvent::Switched { on } = event;
        #[es::allow_impure(reason = "diagnostics only: the value is never stored in the state")]
        let _trace = std::env::var("LAMP_TRACE").is_ok();
        #[allow_impure(reason = "stderr output while debugging replays; no state depends on it")]
        if self.on == *on {
            eprintln!("lamp switched to the state it already had");
        }
        self.on = *on;
        self.switches += 1;
    }
}

fn main() {
    let mut lamp = Lamp::default();
    for on in [true, false, true] {
        lamp.apply(&LampEvent::Switched { on });
    }
    assert!(lamp.on);
    assert_eq!(lamp.switches, 3);
}
