//! Expansion of a checked impl: the user's impl with the marker references in front of
//! each body, and the proof that the attribute ran.

use proc_macro2::TokenStream;
use quote::quote;

use super::ast::Input;
use super::valid::Checked;
use crate::purity::checker::insert_markers;
use crate::seal::Proof;

pub fn expand(mut input: Input, checked: Checked) -> TokenStream {
    for (index, markers) in checked.markers {
        if let syn::ImplItem::Fn(function) = &mut input.item.items[index] {
            insert_markers(&mut function.block, &markers);
        }
    }
    if let Some(snapshot) = &input.args.snapshot {
        input.item.items.extend(snapshot_items(snapshot));
    }
    let item = &input.item;
    let proof = purity_checked(item);
    quote!(#item #proof)
}

/// The snapshot policy and the serde-based encoding of the state.
fn snapshot_items(snapshot: &super::attr::Snapshot) -> Vec<syn::ImplItem> {
    let (version, every) = (&snapshot.version, &snapshot.every);
    let version = syn::LitInt::new(&format!("{}u32", version.base10_digits()), version.span());
    let every = syn::LitInt::new(&format!("{}u64", every.base10_digits()), every.span());
    vec![
        syn::parse_quote! {
            const SNAPSHOT: ::core::option::Option<::es::SnapshotPolicy> =
                ::core::option::Option::Some(::es::SnapshotPolicy { version: #version, every: #every });
        },
        syn::parse_quote! {
            fn encode_snapshot(&self) -> ::core::option::Option<::core::result::Result<::std::string::String, ::es::__private::serde_json::Error>> {
                ::core::option::Option::Some(::es::__private::encode_snapshot(self))
            }
        },
        syn::parse_quote! {
            fn decode_snapshot(state: &str) -> ::core::option::Option<::core::result::Result<Self, ::es::__private::serde_json::Error>> {
                ::core::option::Option::Some(::es::__private::serde_json::from_str(state))
            }
        },
    ]
}

/// `Aggregate` requires `PurityChecked`, and only this attribute implements it (the
/// seal, see `seal.rs`): an impl that skipped the check does not compile.
pub fn purity_checked(item: &syn::ItemImpl) -> TokenStream {
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();
    let self_ty = &item.self_ty;
    // Whether `apply_recorded` is overridden: when it is not, a replay can hand `apply`
    // the bare event and skip building envelopes.
    let reads_envelope = item
        .items
        .iter()
        .any(|item| matches!(item, syn::ImplItem::Fn(function) if function.sig.ident == "apply_recorded"));
    let trait_path = Proof::Purity.trait_path();
    let seal = Proof::Purity.seal_item();
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #impl_generics #trait_path for #self_ty #where_clause {
                #seal
                const READS_ENVELOPE: bool = #reads_envelope;
            }
        };
    }
}
