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

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use syn::parse_quote;

    use super::attribute;

    fn expand(item: &syn::DeriveInput) -> String {
        attribute(&TokenStream::new(), item).to_string()
    }

    #[test]
    fn a_derived_default_in_any_derive_list_and_path_is_proven() {
        for item in [
            parse_quote! { #[derive(Debug, Default)] struct Account { balance: u64 } },
            parse_quote! { #[derive(Debug)] #[derive(core::default::Default)] struct Account { balance: u64 } },
            parse_quote! { #[derive(::std::default::Default)] enum Lamp { #[default] Off, On } },
        ] {
            let expanded = expand(&item);
            assert!(expanded.contains("CheckedState"), "{expanded}");
            assert!(expanded.contains("CheckedDefault"), "{expanded}");
            assert!(!expanded.contains("compile_error"), "{expanded}");
        }
    }

    #[test]
    fn without_a_derived_default_only_the_state_is_proven() {
        let expanded = expand(&parse_quote! { #[derive(Debug)] struct Account { balance: u64 } });
        assert!(expanded.contains("CheckedState"), "{expanded}");
        assert!(!expanded.contains("CheckedDefault"), "{expanded}");
    }

    #[test]
    fn every_refused_field_is_reported_and_the_proofs_are_still_written() {
        let expanded = expand(&parse_quote! {
            #[derive(Debug, Default)]
            enum Order { #[default] Empty, Open(std::cell::Cell<u64>), Paid { receipt: std::fs::File, tick: fn() -> i64 } }
        });
        assert_eq!(expanded.matches("compile_error").count(), 3, "{expanded}");
        assert!(expanded.contains("field `0` of variant `Open`"), "{expanded}");
        assert!(expanded.contains("field `receipt` of variant `Paid`"), "{expanded}");
        assert!(expanded.contains("field `tick` of variant `Paid`"), "{expanded}");
        assert!(expanded.contains("CheckedState") && expanded.contains("CheckedDefault"), "{expanded}");
    }
}
