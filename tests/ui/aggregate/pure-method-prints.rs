pub struct Cart {
    items: u32,
}

#[es::pure]
impl Cart {
    pub fn recount(&mut self) {
        self.items = self.items.min(100);
        println!("{} items", self.items);
    }
}

fn main() {
    let mut cart = Cart { items: 1 };
    cart.recount();
}
