//! Expansion: the state type unchanged, with the proof that it was checked and, when
//! its `Default` is derived, the proof that the initial state is fold-free.

use proc_macro2::TokenStream;
use quote::quote;

use super::ast::Input;
use crate::seal::Proof;

pub fn expand(input: &Input<'_>) -> TokenStream {
    let item = input.item;
    let ident = &item.ident;
    let (_, ty_generics, _) = item.generics.split_for_impl();
    let ty = quote!(#ident #ty_generics);
    let state = Proof::State.impl_for(&item.generics, &ty);
    // A derived `Default` builds every field from its own `Default`: nothing to check.
    let default = input.derives_default.then(|| Proof::Default.impl_for(&item.generics, &ty));
    quote!(#item #state #default)
}
