//! The seals on the proofs the macros write. `es-core` accepts a proof only with the
//! right key for the right proof (`es_core::__private::Seal`); the keys are written
//! here and there, and nowhere in the documentation, so that a hand-written proof does
//! not compile.

use proc_macro2::TokenStream;
use quote::quote;

/// The proofs, with their number and key as `es-core` expects them.
#[derive(Clone, Copy)]
pub enum Proof {
    /// `PurityChecked`: the impl's handlers were checked.
    Purity,
    /// `CheckedState`: the state's field types were checked.
    State,
    /// `CheckedDefault`: the initial state is derived or was checked.
    Default,
}

impl Proof {
    fn number_and_key(self) -> (u8, u64) {
        match self {
            Proof::Purity => (1, 0x5eed_0fe5_a991_0001),
            Proof::State => (2, 0x5eed_0fe5_5747_0002),
            Proof::Default => (3, 0x5eed_0fe5_def0_0003),
        }
    }

    /// The trait this proof implements, as generated code names it.
    pub fn trait_path(self) -> TokenStream {
        match self {
            Proof::Purity => quote!(::es::__private::PurityChecked),
            Proof::State => quote!(::es::__private::CheckedState),
            Proof::Default => quote!(::es::__private::CheckedDefault),
        }
    }

    /// `type Seal = …;`, the item every proof must contain.
    pub fn seal_item(self) -> TokenStream {
        let (number, key) = self.number_and_key();
        quote!(type Seal = ::es::__private::Seal<Self, #number, #key>;)
    }

    /// The whole proof for `ty` with `generics`, as an item of its own.
    pub fn impl_for(self, generics: &syn::Generics, ty: &TokenStream) -> TokenStream {
        let (impl_generics, _, where_clause) = generics.split_for_impl();
        let trait_path = self.trait_path();
        let seal = self.seal_item();
        quote! {
            const _: () = {
                #[automatically_derived]
                impl #impl_generics #trait_path for #ty #where_clause {
                    #seal
                }
            };
        }
    }
}
