//! What the derive emits when the input has errors: the errors, and an `Event` impl
//! that is never meant to run, so that code using the type as an event does not add
//! follow-on errors ("`AccountEvent: Event` is not satisfied") to the real ones.

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

pub fn expand(input: &DeriveInput, errors: &syn::Error) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let predicates = where_clause.into_iter().flat_map(|clause| &clause.predicates);
    let errors = errors.to_compile_error();
    quote! {
        #errors

        const _: () = {
            #[automatically_derived]
            impl #impl_generics ::es::Event for #ident #ty_generics
            where
                #(#predicates,)*
                // The type may well not be `Send`, `Sync` or `'static` (a `Cell`
                // field, a lifetime); a higher-ranked bound is not checked where it
                // is written, so this impl adds no error of its own.
                for<'__es> #ident #ty_generics: ::core::marker::Send + ::core::marker::Sync + 'static,
            {
                const TYPES: &'static [::es::EventType] = &[];

                fn event_type(&self) -> &'static ::es::EventType {
                    ::core::unreachable!()
                }

                fn encode(&self) -> ::core::result::Result<::std::string::String, ::es::EncodeError> {
                    ::core::unreachable!()
                }

                fn decode(
                    _: &str,
                    _: u32,
                    _: &str,
                ) -> ::core::result::Result<Self, ::es::DecodeError> {
                    ::core::unreachable!()
                }
            }
        };
    }
}
