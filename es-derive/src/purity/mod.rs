//! `#[es::pure]`: checks a function (or every method of an impl block) by the rules of
//! `#[aggregate]` and leaves a marker beside it, so that a handler may call it.

pub mod checker;
pub mod escape;
pub mod forbidden;
pub mod std_macros;
pub mod symbol;

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

use self::checker::Options;
use self::forbidden::{ASYNC, Category, PURE_STD_TYPES, PURE_TRAIT_FUNCTIONS, UNSAFE};
use self::symbol::{FREE_MARKER, marker_name};
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
                "`#[es::pure]` goes on a function, a method, an inherent `impl` block or a trait `impl` block",
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

/// The marker a checked method or associated function `name` leaves in its `impl`:
/// an associated constant with the function's own visibility, so that it is reachable
/// wherever the function is, through any path to the type (`Type::f`, `<Type>::f`,
/// `Type::<T>::f`, an alias of the type, `Self::f`).
fn assoc_marker(vis: &syn::Visibility, name: &syn::Ident) -> TokenStream {
    let marker = marker_name(name);
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #vis const #marker: ::es::__private::PureMarker = ::es::__private::PureMarker;
    }
}

/// The marker a checked free function `name` leaves beside it: a type-namespace twin
/// under the function's own name, holding the marker constant. Every `use` that imports
/// the function (renamed, re-exported, glob) imports the twin with it, because a `use`
/// imports a name in all namespaces.
fn free_marker(vis: &syn::Visibility, name: &syn::Ident) -> TokenStream {
    let marker = syn::Ident::new(FREE_MARKER, name.span());
    let doc = format!("Marks `{name}` as checked by `#[es::pure]`.");
    quote! {
        #[doc = #doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #name {}
        #[allow(dead_code)]
        impl #name {
            #[doc(hidden)]
            #vis const #marker: ::es::__private::PureMarker = ::es::__private::PureMarker;
        }
    }
}

/// Whether a lone function is a method or associated function (the attribute then sits
/// inside an `impl`, where only associated items may go): it takes `self` or mentions
/// `Self`.
fn is_associated(function: &syn::ItemFn) -> bool {
    fn mentions_self(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => ident == "Self",
            proc_macro2::TokenTree::Group(group) => mentions_self(group.stream()),
            _ => false,
        })
    }
    function.sig.receiver().is_some()
        || mentions_self(function.sig.to_token_stream())
        || mentions_self(function.block.to_token_stream())
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
    std_macros::rewrite(block);
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
    let marker = if is_associated(&function) {
        assoc_marker(&function.vis, &function.sig.ident)
    } else {
        free_marker(&function.vis, &function.sig.ident)
    };
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
            let name = method.sig.ident.to_string();
            // Calls of std's trait functions need no marker, and skipping them keeps two
            // marked impls of one generic trait (`From<A>`, `From<B>`) from colliding.
            if block.trait_.is_none() || !PURE_TRAIT_FUNCTIONS.contains(&name.as_str()) {
                let vis = if block.trait_.is_some() { syn::parse_quote!(pub) } else { method.vis.clone() };
                markers.push(assoc_marker(&vis, &method.sig.ident));
            }
        }
    }
    if block.trait_.is_none() {
        for marker in markers {
            block.items.push(syn::ImplItem::Verbatim(marker));
        }
        return block.into_token_stream();
    }
    // A trait impl cannot hold extra items: its markers go into an inherent impl beside
    // it, so that `T::f` and `<T as Trait>::f` find them. Std types cannot have one
    // (and need none: their associated functions are allowed by name).
    // A checked `impl Default` is the proof `Aggregate` asks for: the initial state
    // is part of every replay.
    let default_proof = is_default_impl(&block).then(|| {
        let self_ty = block.self_ty.to_token_stream();
        Proof::Default.impl_for(&block.generics, &self_ty)
    });
    if markers.is_empty() || !has_local_name(&block.self_ty) || is_type_parameter(&block.generics, &block.self_ty) {
        return quote!(#block #default_proof);
    }
    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    let self_ty = &block.self_ty;
    quote! {
        #block
        #default_proof
        #[allow(dead_code)]
        impl #impl_generics #self_ty #where_clause {
            #(#markers)*
        }
    }
}

/// `impl Default for T` or `impl core::default::Default for T`.
fn is_default_impl(block: &syn::ItemImpl) -> bool {
    matches!(&block.trait_, Some((None, path, _)) if path.segments.last().is_some_and(|last| last.ident == "Default"))
}

/// `impl<T: Bound> Trait for T`: a blanket impl, for which no inherent impl exists.
fn is_type_parameter(generics: &syn::Generics, ty: &syn::Type) -> bool {
    let syn::Type::Path(path) = ty else { return false };
    path.path.get_ident().is_some_and(|ident| generics.type_params().any(|param| param.ident == *ident))
}

/// Whether a type can take an inherent impl here: a path not named like a std type.
fn has_local_name(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(path) => {
            path.qself.is_none()
                && path
                    .path
                    .segments
                    .last()
                    .is_some_and(|last| !PURE_STD_TYPES.contains(&last.ident.to_string().as_str()))
        }
        _ => false,
    }
}
