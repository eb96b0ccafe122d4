//! `#[aggregate]` on the state type: checks that every field is data, then re-emits the
//! type with the proof that it was checked (and, when `Default` is derived, the proof
//! that the initial state is fold-free).

mod ast;
mod expand;
mod valid;

use proc_macro2::TokenStream;
use quote::quote;

use self::ast::Input;
use crate::ctxt::Ctxt;

pub fn attribute(args: &TokenStream, item: &syn::DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let input = Input::from_syn(&cx, args, item);
    input.validate(&cx);
    // On error the proofs are still written, so that the user sees the precise errors
    // on the fields and not the missing proofs on every use of the aggregate.
    let expanded = expand::expand(&input);
    match cx.check() {
        Ok(()) => expanded,
        Err(errors) => {
            let errors = errors.to_compile_error();
            quote!(#errors #expanded)
        }
    }
}
