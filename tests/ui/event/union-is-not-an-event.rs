use es::Event;

#[derive(Event)]
union Amount {
    cents: u64,
    ratio: f64,
}

fn main() {}
