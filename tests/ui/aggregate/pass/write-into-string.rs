use std::fmt::Write as _;

use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum TicketEvent {
    Commented { author: String, text: String },
    Closed,
}

#[aggregate]
#[derive(Debug, Default)]
pub struct Ticket {
    transcript: String,
    comments: usize,
    closed: bool,
}

#[aggregate]
impl Aggregate for Ticket {
    type Event = TicketEvent;

    fn apply(&mut self, event: &TicketEvent) {
        match event {
            TicketEvent::Commented { author, text } => {
                self.comments += 1;
                // Writing into a String cannot fail.
                let _ = writeln!(self.transcript, "#{} {author}: {text}", self.comments);
            }
            TicketEvent::Closed => {
                self.closed = true;
                self.transcript.push_str(&format!("closed after {} comments", self.comments));
            }
        }
    }
}

fn main() {
    let mut ticket = Ticket::default();
    for event in [
        TicketEvent::Commented { author: "ada".into(), text: "it breaks".into() },
        TicketEvent::Commented { author: "bob".into(), text: "fixed".into() },
        TicketEvent::Closed,
    ] {
        ticket.apply(&event);
    }
    assert_eq!(ticket.transcript, "#1 ada: it breaks\n#2 bob: fixed\nclosed after 2 comments");
    assert!(ticket.closed);
}
