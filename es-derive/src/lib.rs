//! Procedural macros of `es`. Use them through the facade: `es::Event`,
//! `es::aggregate`, `es::pure`.

mod aggregate;
mod ctxt;
mod event;
mod field_type;
mod purity;
mod seal;
mod state;

use proc_macro::TokenStream;

#[doc = include_str!("../docs/event.md")]
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    event::derive(&input).into()
}

#[doc = include_str!("../docs/aggregate.md")]
#[proc_macro_attribute]
pub fn aggregate(args: TokenStream, input: TokenStream) -> TokenStream {
    let input = proc_macro2::TokenStream::from(input);
    // On the state type (a struct or an enum) or on `impl Aggregate for T`.
    match syn::parse2::<syn::DeriveInput>(input.clone()) {
        Ok(state) => state::attribute(&args.into(), &state).into(),
        Err(_) => aggregate::attribute(args.into(), input).into(),
    }
}

#[doc = include_str!("../docs/pure.md")]
#[proc_macro_attribute]
pub fn pure(args: TokenStream, input: TokenStream) -> TokenStream {
    purity::attribute(args.into(), input.into()).into()
}
