//! Validation: the impl is `impl Aggregate for T`, the handlers have the signature the
//! trait fixes (checked here too, so that the error says *why* and not just "expected
//! signature"), and every body is a pure fold. One `check_*` function per rule.

use proc_macro2::TokenStream;

use super::ast::{Handler, Input};
use crate::ctxt::Ctxt;
use crate::purity::{self, checker::Options};

/// What validation learned that expansion needs.
pub struct Checked {
    /// For each checked function (by index in the impl): its marker references.
    pub markers: Vec<(usize, Vec<TokenStream>)>,
    /// Handlers whose signature is wrong: the fallback replaces them by a well-formed
    /// stub, so that rustc does not add its own mismatch errors to ours.
    pub broken: Vec<usize>,
}

impl Input {
    /// Checks everything, reporting every finding to `cx`, and strips the escape
    /// hatches from the bodies (they are for the checker only).
    pub fn validate(&mut self, cx: &Ctxt) -> Checked {
        check_is_aggregate_impl(cx, &self.item);
        let options = Options::new(&self.args.trusted, self.self_name.clone());
        let mut checked = Checked { markers: Vec::new(), broken: Vec::new() };
        for (index, item) in self.item.items.iter_mut().enumerate() {
            let syn::ImplItem::Fn(function) = item else { continue };
            let handler = Handler::of(function);
            if handler != Handler::Other && !check_signature(cx, &function.sig, handler) {
                checked.broken.push(index);
            }
            let markers = purity::check_and_rewrite(cx, &function.sig, &mut function.block, &options);
            checked.markers.push((index, markers));
        }
        checked
    }
}

/// The attribute proves something about `Aggregate::apply`; on another impl it would
/// prove nothing.
fn check_is_aggregate_impl(cx: &Ctxt, item: &syn::ItemImpl) {
    match &item.trait_ {
        None => cx.error_spanned_by(
            &item.self_ty,
            "`#[aggregate]` goes on `impl Aggregate for T`: put `type Event` and `fn apply` in that impl",
        ),
        Some((Some(bang), ..)) => cx.error_spanned_by(bang, "`#[aggregate]` cannot go on a negative impl"),
        Some((None, path, _)) => {
            if path.segments.last().is_none_or(|segment| segment.ident != "Aggregate") {
                cx.error_spanned_by(path, "`#[aggregate]` goes on `impl Aggregate for T`, not on another trait's impl");
            }
        }
    }
}

fn expected(handler: Handler) -> &'static str {
    match handler {
        Handler::ApplyRecorded => "fn apply_recorded(&mut self, recorded: &Recorded<Self::Event>)",
        Handler::Apply | Handler::Other => "fn apply(&mut self, event: &Self::Event)",
    }
}

fn name(handler: Handler) -> &'static str {
    match handler {
        Handler::ApplyRecorded => "apply_recorded",
        Handler::Apply | Handler::Other => "apply",
    }
}

/// Returns whether the signature is the one the trait fixes; reports every deviation.
fn check_signature(cx: &Ctxt, sig: &syn::Signature, handler: Handler) -> bool {
    let mut ok = true;
    ok &= check_not_async(cx, sig, handler);
    ok &= check_not_unsafe(cx, sig, handler);
    ok &= check_not_const_or_extern(cx, sig, handler);
    ok &= check_not_generic(cx, sig, handler);
    ok &= check_receiver(cx, sig, handler);
    ok &= check_event_parameter(cx, sig, handler);
    ok &= check_no_extra_parameters(cx, sig, handler);
    ok &= check_returns_unit(cx, sig, handler);
    ok
}

/// A fold is synchronous: awaiting means waiting on the outside world, whose answer a
/// replay cannot reproduce.
fn check_not_async(cx: &Ctxt, sig: &syn::Signature, handler: Handler) -> bool {
    let Some(token) = &sig.asyncness else { return true };
    cx.error_spanned_by(
        token,
        format!(
            "`{}` must not be `async`: a fold is synchronous, and awaiting means waiting on the outside world, which a replay cannot reproduce; write `{}`",
            name(handler),
            expected(handler)
        ),
    );
    false
}

/// Unsafe code can reach anything (globals, raw memory), so the check would prove nothing.
fn check_not_unsafe(cx: &Ctxt, sig: &syn::Signature, handler: Handler) -> bool {
    let Some(token) = &sig.unsafety else { return true };
    cx.error_spanned_by(
        token,
        format!(
            "`{}` must not be `unsafe`: unsafe code can reach what the purity check cannot see; write `{}`",
            name(handler),
            expected(handler)
        ),
    );
    false
}

/// The trait fixes the signature; `const` and `extern` only produce rustc's less helpful
/// mismatch errors.
fn check_not_const_or_extern(cx: &Ctxt, sig: &syn::Signature, handler: Handler) -> bool {
    let mut ok = true;
    if let Some(token) = &sig.constness {
        cx.error_spanned_by(token, format!("`{}` cannot be `const`: write `{}`", name(handler), expected(handler)));
        ok = false;
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, format!("`{}` cannot be `extern`: write `{}`", name(handler), expected(handler)));
        ok = false;
    }
    ok
}

/// A generic handler would fold differently depending on a type chosen by the caller;
/// the trait fixes one event type.
fn check_not_generic(cx: &Ctxt, sig: &syn::Signature, handler: Handler) -> bool {
    if sig.generics.params.is_empty() && sig.generics.where_clause.is_none() {
        return true;
    }
    cx.error_spanned_by(
        &sig.generics,
        format!(
            "`{}` must not be generic: it folds exactly `Self::Event`; write `{}`",
            name(handler),
            expected(handler)
        ),
    );
    false
}

/// A handler changes the existing state in place; by value or by shared reference it
/// could not (or would have to rebuild the whole state).
fn check_receiver(cx: &Ctxt, sig: &syn::Signature, handler: Handler) -> bool {
    let Some(syn::FnArg::Receiver(receiver)) = sig.inputs.first() else {
        cx.error_spanned_by(
            &sig.ident,
            format!(
                "`{}` folds into the state: its first parameter is `&mut self`; write `{}`",
                name(handler),
                expected(handler)
            ),
        );
        return false;
    };
    let mutable_reference = matches!(
        &*receiver.ty,
        syn::Type::Reference(reference) if reference.mutability.is_some()
            && matches!(&*reference.elem, syn::Type::Path(path) if path.path.is_ident("Self"))
    );
    if mutable_reference {
        return true;
    }
    let how = if receiver.reference.is_some() { "`&self`" } else { "`self` by value" };
    cx.error_spanned_by(
        receiver,
        format!(
            "`{}` takes {how}, but a handler folds the event into the existing state in place: take `&mut self`; write `{}`",
            name(handler),
            expected(handler)
        ),
    );
    false
}

/// A recorded event is a fact: handlers see it only by shared reference, so that no
/// handler can change what the next one (or the next replay) sees.
fn check_event_parameter(cx: &Ctxt, sig: &syn::Signature, handler: Handler) -> bool {
    let what = if handler == Handler::ApplyRecorded { "recorded event" } else { "event" };
    let Some(syn::FnArg::Typed(param)) = sig.inputs.iter().nth(1) else {
        if sig.inputs.len() < 2 {
            cx.error_spanned_by(
                &sig.inputs,
                format!("`{}` takes the {what} as its second parameter; write `{}`", name(handler), expected(handler)),
            );
        }
        return false;
    };
    match &*param.ty {
        syn::Type::Reference(reference) if reference.mutability.is_some() => {
            cx.error_spanned_by(
                reference.mutability,
                format!(
                    "the {what} must not be mutated: it is a recorded fact that every replay must see unchanged; take it as `&{}` instead of `&mut`",
                    compact(&reference.elem)
                ),
            );
            false
        }
        syn::Type::Reference(_) => true,
        other => {
            cx.error_spanned_by(
                other,
                format!(
                    "take the {what} by shared reference: recorded events are only ever handed out as `&`; write `{}`",
                    expected(handler)
                ),
            );
            false
        }
    }
}

/// A fold may depend on the state and the event only; anything else must be captured
/// into the event when the command is decided.
fn check_no_extra_parameters(cx: &Ctxt, sig: &syn::Signature, handler: Handler) -> bool {
    let mut ok = true;
    for extra in sig.inputs.iter().skip(2) {
        cx.error_spanned_by(
            extra,
            format!(
                "`{}` takes exactly `&mut self` and the event: a fold may depend on nothing else; capture what it needs into the event when the command is decided",
                name(handler)
            ),
        );
        ok = false;
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "a handler cannot be variadic");
        ok = false;
    }
    ok
}

/// An event that was recorded has happened: applying it cannot fail or produce a value.
/// Validation belongs to the command side, before the event is recorded.
fn check_returns_unit(cx: &Ctxt, sig: &syn::Signature, handler: Handler) -> bool {
    let syn::ReturnType::Type(_, ty) = &sig.output else { return true };
    if matches!(&**ty, syn::Type::Tuple(tuple) if tuple.elems.is_empty()) {
        return true;
    }
    cx.error_spanned_by(
        &sig.output,
        format!(
            "`{}` returns nothing: a recorded event has happened, so applying it cannot fail or produce a value; validate on the command side before the event is recorded",
            name(handler)
        ),
    );
    false
}

/// A type as a user writes it: `es::Recorded<CartEvent>`, not `es :: Recorded < CartEvent >`.
fn compact(ty: &syn::Type) -> String {
    let spaced = quote::ToTokens::to_token_stream(ty).to_string();
    let mut out = spaced.replace(" :: ", "::").replace(" < ", "<").replace(" >", ">").replace(" ,", ",");
    if out.starts_with(":: ") {
        out.replace_range(..3, "::");
    }
    out
}
