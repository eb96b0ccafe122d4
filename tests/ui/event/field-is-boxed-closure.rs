use es::Event;

#[derive(Event)]
enum RuleEvent {
    Added { rule: Box<dyn Fn(u64) -> bool + Send + Sync> },
}

fn main() {}
