use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum MeterEvent {
    Read { millilitres: u64 },
}

// Stands in for another crate, whose functions cannot carry `#[es::pure]`.
mod units {
    pub fn litres(millilitres: u64) -> f64 {
        millilitres as f64 / 1000.0
    }

    pub fn round_to(value: f64, step: f64) -> f64 {
        (value / step).round() * step
    }
}

#[aggregate]
#[derive(Debug, Default)]
pub struct Meter {
    litres: f64,
}

#[aggregate(trust(units::litres, units::round_to))]
impl Aggregate for Meter {
    type Event = MeterEvent;

    fn apply(&mut self, event: &MeterEvent) {
        let MeterEvent::Read { millilitres } = event;
        self.litres = units::round_to(self.litres + units::litres(*millilitres), 0.5);
    }
}

fn main() {
    let mut meter = Meter::default();
    for millilitres in [1200, 900, 400] {
        meter.apply(&MeterEvent::Read { millilitres });
    }
    assert!((meter.litres - 2.5).abs() < f64::EPSILON);
}
