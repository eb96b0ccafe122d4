//! Output when validation found errors: the user's impl still compiles (handlers with a
//! wrong signature replaced by well-formed stubs, no marker references, no `.await`), so
//! that the user sees our precise errors and not rustc's follow-on ones.

use proc_macro2::TokenStream;
use quote::quote;
use syn::visit_mut::{self, VisitMut};

use super::ast::{Handler, Input};
use super::expand::purity_checked;
use super::valid::Checked;

pub fn expand(mut input: Input, checked: &Checked, errors: &syn::Error) -> TokenStream {
    for item in &mut input.item.items {
        if let syn::ImplItem::Fn(function) = item {
            remove_await(&mut function.block);
        }
    }
    for &index in &checked.broken {
        if let syn::ImplItem::Fn(function) = &input.item.items[index] {
            input.item.items[index] = stub(Handler::of(function));
        }
    }
    let errors = errors.to_compile_error();
    let item = &input.item;
    let proof = purity_checked(item);
    quote!(#errors #item #proof)
}

/// A handler with the signature the trait fixes and an empty body.
fn stub(handler: Handler) -> syn::ImplItem {
    match handler {
        Handler::ApplyRecorded => syn::parse_quote! {
            fn apply_recorded(&mut self, _: &::es::Recorded<<Self as ::es::Aggregate>::Event>) {}
        },
        Handler::Apply | Handler::Other => syn::parse_quote! {
            fn apply(&mut self, _: &<Self as ::es::Aggregate>::Event) {}
        },
    }
}

/// `.await` and `async` blocks, already reported, would otherwise make rustc complain
/// again about awaiting outside an async function.
pub fn remove_await(block: &mut syn::Block) {
    RemoveAwait.visit_block_mut(block);
}

struct RemoveAwait;

impl VisitMut for RemoveAwait {
    fn visit_expr_mut(&mut self, expr: &mut syn::Expr) {
        visit_mut::visit_expr_mut(self, expr);
        match expr {
            syn::Expr::Await(awaited) => *expr = (*awaited.base).clone(),
            syn::Expr::Async(block) => {
                *expr = syn::Expr::Block(syn::ExprBlock { attrs: Vec::new(), label: None, block: block.block.clone() });
            }
            _ => {}
        }
    }
}
