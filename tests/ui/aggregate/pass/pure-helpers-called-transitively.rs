use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum InvoiceEvent {
    LineAdded { unit_cents: u64, quantity: u32 },
    DiscountGranted { percent: u8 },
}

mod pricing {
    #[es::pure]
    pub fn line_total(unit_cents: u64, quantity: u32) -> u64 {
        unit_cents * u64::from(quantity)
    }

    #[es::pure]
    pub fn discounted(cents: u64, percent: u8) -> u64 {
        cents - percent_of(cents, percent)
    }

    #[es::pure]
    fn percent_of(cents: u64, percent: u8) -> u64 {
        cents * u64::from(percent) / 100
    }
}

#[aggregate]
#[derive(Debug, Default)]
pub struct Invoice {
    gross_cents: u64,
    discount: u8,
    net_cents: u64,
}

#[es::pure]
impl Invoice {
    fn recompute(&mut self) {
        self.net_cents = pricing::discounted(self.gross_cents, self.discount);
    }

    fn add_line(&mut self, unit_cents: u64, quantity: u32) {
        self.gross_cents += pricing::line_total(unit_cents, quantity);
        self.recompute();
    }
}

#[aggregate]
impl Aggregate for Invoice {
    type Event = InvoiceEvent;

    fn apply(&mut self, event: &InvoiceEvent) {
        match event {
            InvoiceEvent::LineAdded { unit_cents, quantity } => self.add_line(*unit_cents, *quantity),
            InvoiceEvent::DiscountGranted { percent } => {
                self.discount = *percent;
                self.recompute();
            }
        }
    }
}

fn main() {
    let mut invoice = Invoice::default();
    for event in [
        InvoiceEvent::LineAdded { unit_cents: 250, quantity: 4 },
        InvoiceEvent::LineAdded { unit_cents: 1000, quantity: 1 },
        InvoiceEvent::DiscountGranted { percent: 10 },
    ] {
        invoice.apply(&event);
    }
    assert_eq!(invoice.gross_cents, 2000);
    assert_eq!(invoice.net_cents, 1800);
}
