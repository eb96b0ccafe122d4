use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum LoyaltyEvent {
    Earned { points: u32 },
    Redeemed { points: u32 },
}

#[aggregate]
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Loyalty {
    balance: u32,
    lifetime: u32,
    tier: Tier,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub enum Tier {
    #[default]
    Bronze,
    Silver,
    Gold,
}

#[es::pure]
fn tier_for(lifetime: u32) -> Tier {
    match lifetime {
        0..=99 => Tier::Bronze,
        100..=499 => Tier::Silver,
        _ => Tier::Gold,
    }
}

#[aggregate]
impl Aggregate for Loyalty {
    type Event = LoyaltyEvent;

    fn apply(&mut self, event: &LoyaltyEvent) {
        match event {
            LoyaltyEvent::Earned { points } => {
                self.balance += points;
                self.lifetime += points;
                self.tier = tier_for(self.lifetime);
            }
            LoyaltyEvent::Redeemed { points } => self.balance = self.balance.saturating_sub(*points),
        }
    }
}

fn main() {
    let events = [
        LoyaltyEvent::Earned { points: 300 },
        LoyaltyEvent::Redeemed { points: 120 },
        LoyaltyEvent::Earned { points: 250 },
    ];
    es::testing::assert_replay_is_deterministic::<Loyalty>(&events);
    let mut loyalty = Loyalty::default();
    events.iter().for_each(|event| loyalty.apply(event));
    assert_eq!((loyalty.balance, loyalty.lifetime, loyalty.tier), (430, 550, Tier::Gold));
}
