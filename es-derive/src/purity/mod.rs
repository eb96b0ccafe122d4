//! `#[es::pure]`: checks a function (or every method of an impl block) by the rules of
//! `#[aggregate]` and leaves a marker beside it, so that a handler may call it.

pub mod checker;
pub mod escape;
pub mod forbidden;
pub mod symbol;

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

use self::checker::Options;
use self::forbidden::{ASYNC, Category, UNSAFE};
use self::symbol::marker_name;
use crate::aggregate::attr::Args;
use crate::aggregate::fallback::remove_await;
use crate::ctxt::Ctxt;
use crate::seal::Proof;

pub fn attribute(args: TokenStream, input: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let args = Args::from_tokens(&cx, args);
    if let Some(snapshot) = &args.snapshot {
        cx.error_at(snapshot.span, "`snapshot(...)` belongs on `#[aggregate]`, not on `#[es::pure]`");
    }
    let output = match syn::parse2::<syn::Item>(input.clone()) {
        Ok(syn::Item::Fn(function)) => pure_fn(&cx, function, &args),
        Ok(syn::Item::Impl(block)) => pure_impl(&cx, block, &args),
        Ok(other) => {
            cx.error_spanned_by(
                &other,
                "`#[es::pure]` goes on a function, a method, an inherent `impl` block or an `impl Default for T`",
            );
            other.into_token_stream()
        }
        Err(error) => {
            cx.syn_error(error);
            input
        }
    };
    match cx.check() {
        Ok(()) => output,
        Err(errors) => {
            let errors = errors.to_compile_error();
            quote!(#errors #output)
        }
    }
}

/// The marker a checked function `name` leaves beside it, with the function's own
/// visibility so that it is reachable wherever the function is.
fn marker(vis: &syn::Visibility, name: &syn::Ident) -> TokenStream {
    let marker = marker_name(name);
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #vis const #marker: ::es::__private::PureMarker = ::es::__private::PureMarker;
    }
}

/// A pure function runs synchronously and safely; anything else escapes the check.
fn check_signature(cx: &Ctxt, sig: &syn::Signature) {
    if let Some(token) = &sig.asyncness {
        cx.error_at(
            token.span,
            format!("an `async fn` {}: {ASYNC}; {}", Category::Async.does(), Category::Async.instead()),
        );
    }
    if let Some(token) = &sig.unsafety {
        cx.error_at(
            token.span,
            format!("an `unsafe fn` {}: {UNSAFE}; {}", Category::Unsafe.does(), Category::Unsafe.instead()),
        );
    }
}

/// Checks one body and rewrites it for the output: escape hatches removed, and marker
/// references in front unless errors were found (they would only add noise then).
pub fn check_and_rewrite(
    cx: &Ctxt,
    sig: &syn::Signature,
    block: &mut syn::Block,
    options: &Options,
) -> Vec<TokenStream> {
    let markers = checker::check_fn(cx, sig, block, options);
    escape::strip(block);
    markers
}

/// Second half of [`check_and_rewrite`], once every body of the item has been checked.
pub fn finish(cx: &Ctxt, block: &mut syn::Block, markers: &[TokenStream]) {
    if cx.has_errors() {
        remove_await(block);
    } else {
        checker::insert_markers(block, markers);
    }
}

fn pure_fn(cx: &Ctxt, mut function: syn::ItemFn, args: &Args) -> TokenStream {
    let options = Options::new(&args.trusted, None);
    check_signature(cx, &function.sig);
    let markers = check_and_rewrite(cx, &function.sig, &mut function.block, &options);
    finish(cx, &mut function.block, &markers);
    let marker = marker(&function.vis, &function.sig.ident);
    quote!(#function #marker)
}

fn pure_impl(cx: &Ctxt, mut block: syn::ItemImpl, args: &Args) -> TokenStream {
    let self_type = match &*block.self_ty {
        syn::Type::Path(path) => path.path.segments.last().map(|segment| segment.ident.to_string()),
        _ => None,
    };
    let options = Options::new(&args.trusted, self_type);
    let mut checked = Vec::new();
    for (index, item) in block.items.iter_mut().enumerate() {
        if let syn::ImplItem::Fn(method) = item {
            check_signature(cx, &method.sig);
            checked.push((index, check_and_rewrite(cx, &method.sig, &mut method.block, &options)));
        }
    }
    let mut markers = Vec::new();
    for (index, calls) in checked {
        if let syn::ImplItem::Fn(method) = &mut block.items[index] {
            finish(cx, &mut method.block, &calls);
            markers.push(marker(&method.vis, &method.sig.ident));
        }
    }
    // A trait impl cannot hold extra items; its methods are checked, and reached through
    // the trait (`Default::default()`), which needs no marker.
    if block.trait_.is_none() {
        for marker in markers {
            block.items.push(syn::ImplItem::Verbatim(marker));
        }
    }
    // A checked `impl Default` is the proof `Aggregate` asks for: the initial state
    // is part of every replay.
    let default_proof = is_default_impl(&block).then(|| {
        let self_ty = block.self_ty.to_token_stream();
        Proof::Default.impl_for(&block.generics, &self_ty)
    });
    quote!(#block #default_proof)
}

/// `impl Default for T` or `impl core::default::Default for T`.
fn is_default_impl(block: &syn::ItemImpl) -> bool {
    matches!(&block.trait_, Some((None, path, _)) if path.segments.last().is_some_and(|last| last.ident == "Default"))
}
