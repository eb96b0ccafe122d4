use es::Event;

#[derive(Event)]
struct Renamed<'a> {
    name: std::borrow::Cow<'a, str>,
}

fn main() {}
