//! `#[aggregate]` on `impl Aggregate for T`: checks that every handler is a pure fold
//! of events, then re-emits the impl with the proof that it was checked.

mod ast;
pub mod attr;
mod expand;
pub mod fallback;
mod valid;

use proc_macro2::TokenStream;
use quote::quote;

use self::ast::Input;
use crate::ctxt::Ctxt;

pub fn attribute(args: TokenStream, input: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let mut input = match Input::from_syn(&cx, args, input) {
        Ok(input) => input,
        Err(original) => {
            let errors = cx.check().err().map(|errors| errors.to_compile_error());
            return quote!(#errors #original);
        }
    };
    let checked = input.validate(&cx);
    match cx.check() {
        Ok(()) => expand::expand(input, checked),
        Err(errors) => fallback::expand(input, &checked, &errors),
    }
}
