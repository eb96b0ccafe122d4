use es::Event;

#[derive(Event)]
struct RuleAdded {
    rule: fn(u64) -> bool,
}

fn main() {}
