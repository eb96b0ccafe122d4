use es::Event;

#[derive(Event)]
struct BufferFilled {
    buffer: *const u8,
}

fn main() {}
