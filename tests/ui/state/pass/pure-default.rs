use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum ThermostatEvent {
    Set { celsius: i32 },
}

#[aggregate]
#[derive(Debug)]
pub struct Thermostat<const MIN: i32> {
    target: i32,
}

// A hand-written initial state, checked by the same rules as `apply`.
#[es::pure]
impl<const MIN: i32> Default for Thermostat<MIN> {
    fn default() -> Self {
        Thermostat { target: std::cmp::max(MIN, 20) }
    }
}

#[aggregate]
impl<const MIN: i32> Aggregate for Thermostat<MIN> {
    type Event = ThermostatEvent;

    fn apply(&mut self, event: &ThermostatEvent) {
        let ThermostatEvent::Set { celsius } = event;
        self.target = std::cmp::max(MIN, *celsius);
    }
}

fn main() {
    let mut thermostat = Thermostat::<5>::default();
    assert_eq!(thermostat.target, 20);
    thermostat.apply(&ThermostatEvent::Set { celsius: 2 });
    assert_eq!(thermostat.target, 5);
}
