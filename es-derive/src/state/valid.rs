//! The state is data: every field type is checked against the table in `field_type.rs`
//! (shared with `#[derive(Event)]`), every finding reported at once.

use super::ast::{Field, Input};
use crate::ctxt::Ctxt;
use crate::field_type::{self, Finding, Kind};

impl Input<'_> {
    pub fn validate(&self, cx: &Ctxt) {
        for field in &self.fields {
            check_field_is_data(cx, &self.item.ident, field);
        }
    }
}

/// The state is rebuilt by folding recorded events into `Default::default()`. Whatever
/// it holds besides data (a handle, a function, a value shared or changed outside
/// `apply`, a generator) lets `apply` reach what the purity check cannot see, or lets
/// the state change without an event: either way a replay rebuilds another state.
fn check_field_is_data(cx: &Ctxt, state: &syn::Ident, field: &Field<'_>) {
    for finding in field_type::find(field.ty, |_| true) {
        cx.error_spanned_by(finding.ty, message(state, field, &finding));
    }
}

fn message(state: &syn::Ident, field: &Field<'_>, finding: &Finding<'_>) -> String {
    let name = &finding.name;
    let (what, instead) = match finding.kind {
        Kind::Io => (
            format!("holds `{name}`, a handle to the outside world (a file, stream, socket or process): whatever `apply` reads or writes through it, a replay cannot reproduce"),
            "keep the handle outside the aggregate (in the command handler, a projection or the relay's sink) and keep in the state only the data the events carry",
        ),
        Kind::FnPointer | Kind::TraitObject | Kind::ImplTrait => (
            format!("holds {name}: code is not data, and calling it from `apply` runs whatever it points to, which the purity check cannot see"),
            "store data that selects the behaviour (an enum) and match on it in `apply`, or mark the function `#[es::pure]` and call it by name",
        ),
        Kind::InteriorMutability if finding.in_arc => (
            format!("holds `{name}` inside an `Arc`: shared mutable state, which any other holder of the `Arc` can change outside any event"),
            "store the plain value: the aggregate owns its state and changes it only in `apply` (`Arc` of immutable data, such as `Arc<str>`, is fine)",
        ),
        Kind::InteriorMutability => (
            format!("holds `{name}`, which gives interior mutability: its value can change behind `&self`, outside any event"),
            "store the plain value: the aggregate owns its state and changes it only in `apply`, through `&mut self`",
        ),
        Kind::SharedOwnership => (
            format!("holds `{name}`, which shares ownership with code outside the state: what the others do to it (or whether they still hold it) is not in the events"),
            "own the value (`Box<T>` for recursion; `Arc<T>` of immutable data, such as `Arc<str>`, is fine)",
        ),
        Kind::Randomness => (
            format!("holds `{name}`, a random number generator: every replay would draw other numbers"),
            "draw the random value when the command is decided and record it in the event",
        ),
        Kind::Global => (
            format!("holds `{name}`, a key to a thread-local global: its value is not in the events"),
            "keep in the state only the data the events carry",
        ),
        Kind::Concurrency => (
            format!("holds `{name}`, which talks to other threads: what they send or do is not in the events"),
            "keep it outside the aggregate (in the command handler or a projection)",
        ),
        Kind::Reference => (
            "holds a reference: the state must own its data (`Aggregate` is `'static`), and what a reference points to can change outside any event".to_owned(),
            "use an owned type such as `String`, `Vec<T>` or `Box<T>`",
        ),
        Kind::RawPointer => (
            "holds a raw pointer: what it points to is outside the state and can change outside any event".to_owned(),
            "store the value it points to",
        ),
    };
    format!(
        "{} of the aggregate state `{state}` {what}; the state must be plain data that a replay rebuilds from events. Instead, {instead}",
        field.name
    )
}
