use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum ThermostatEvent {
    Set { celsius: i32 },
}

#[aggregate]
#[derive(Debug)]
pub struct Thermostat {
    target: i32,
    history: Vec<i32>,
}

// The state before the first event is part of every replay, so it is checked too.
#[es::pure]
impl Default for Thermostat {
    fn default() -> Self {
        Thermostat { target: 20, history: Vec::with_capacity(8) }
    }
}

#[aggregate]
impl Aggregate for Thermostat {
    type Event = ThermostatEvent;

    fn apply(&mut self, event: &ThermostatEvent) {
        let ThermostatEvent::Set { celsius } = event;
        self.history.push(std::mem::replace(&mut self.target, (*celsius).clamp(5, 30)));
    }
}

fn main() {
    let mut thermostat = Thermostat::default();
    for celsius in [18, 40, 21] {
        thermostat.apply(&ThermostatEvent::Set { celsius });
    }
    assert_eq!(thermostat.target, 21);
    assert_eq!(thermostat.history, [20, 18, 30]);
}
