use es::Event;

#[derive(Event)]
struct Opened {
    owner: String,
}

fn main() {}
