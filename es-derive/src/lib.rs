//! Procedural macros of `es`. Use them through the facade: `es::Event`,
//! `es::aggregate`, `es::pure`.

mod aggregate;
mod ctxt;
mod event;
mod purity;

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
    aggregate::attribute(args.into(), input.into()).into()
}

#[doc = include_str!("../docs/pure.md")]
#[proc_macro_attribute]
pub fn pure(args: TokenStream, input: TokenStream) -> TokenStream {
    purity::attribute(args.into(), input.into()).into()
}
