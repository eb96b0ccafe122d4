//! The escape hatch: `#[es::allow_impure(reason = "...")]` on one statement or
//! expression. The checker skips what it marks, and the attribute is stripped from the
//! output so that rustc never sees it.

use syn::visit_mut::{self, VisitMut};
use syn::{Attribute, Expr, Meta};

use super::symbol::{ALLOW_IMPURE, ES, REASON};
use crate::ctxt::Ctxt;

/// The attributes of any expression (`Expr` has no accessor for them).
macro_rules! expr_attrs {
    ($expr:expr, $($ref:tt)+) => {
        match $expr {
            Expr::Array(e) => Some($($ref)+ e.attrs),
            Expr::Assign(e) => Some($($ref)+ e.attrs),
            Expr::Async(e) => Some($($ref)+ e.attrs),
            Expr::Await(e) => Some($($ref)+ e.attrs),
            Expr::Binary(e) => Some($($ref)+ e.attrs),
            Expr::Block(e) => Some($($ref)+ e.attrs),
            Expr::Break(e) => Some($($ref)+ e.attrs),
            Expr::Call(e) => Some($($ref)+ e.attrs),
            Expr::Cast(e) => Some($($ref)+ e.attrs),
            Expr::Closure(e) => Some($($ref)+ e.attrs),
            Expr::Const(e) => Some($($ref)+ e.attrs),
            Expr::Continue(e) => Some($($ref)+ e.attrs),
            Expr::Field(e) => Some($($ref)+ e.attrs),
            Expr::ForLoop(e) => Some($($ref)+ e.attrs),
            Expr::Group(e) => Some($($ref)+ e.attrs),
            Expr::If(e) => Some($($ref)+ e.attrs),
            Expr::Index(e) => Some($($ref)+ e.attrs),
            Expr::Infer(e) => Some($($ref)+ e.attrs),
            Expr::Let(e) => Some($($ref)+ e.attrs),
            Expr::Lit(e) => Some($($ref)+ e.attrs),
            Expr::Loop(e) => Some($($ref)+ e.attrs),
            Expr::Macro(e) => Some($($ref)+ e.attrs),
            Expr::Match(e) => Some($($ref)+ e.attrs),
            Expr::MethodCall(e) => Some($($ref)+ e.attrs),
            Expr::Paren(e) => Some($($ref)+ e.attrs),
            Expr::Path(e) => Some($($ref)+ e.attrs),
            Expr::Range(e) => Some($($ref)+ e.attrs),
            Expr::RawAddr(e) => Some($($ref)+ e.attrs),
            Expr::Reference(e) => Some($($ref)+ e.attrs),
            Expr::Repeat(e) => Some($($ref)+ e.attrs),
            Expr::Return(e) => Some($($ref)+ e.attrs),
            Expr::Struct(e) => Some($($ref)+ e.attrs),
            Expr::Try(e) => Some($($ref)+ e.attrs),
            Expr::TryBlock(e) => Some($($ref)+ e.attrs),
            Expr::Tuple(e) => Some($($ref)+ e.attrs),
            Expr::Unary(e) => Some($($ref)+ e.attrs),
            Expr::Unsafe(e) => Some($($ref)+ e.attrs),
            Expr::While(e) => Some($($ref)+ e.attrs),
            Expr::Yield(e) => Some($($ref)+ e.attrs),
            _ => None,
        }
    };
}

pub fn expr_attrs(expr: &Expr) -> &[Attribute] {
    expr_attrs!(expr, &).map_or(&[], Vec::as_slice)
}

pub fn expr_attrs_mut(expr: &mut Expr) -> Option<&mut Vec<Attribute>> {
    expr_attrs!(expr, &mut)
}

/// `#[es::allow_impure(...)]` or the bare `#[allow_impure(...)]`.
pub fn is_escape(attr: &Attribute) -> bool {
    let path = attr.path();
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    match segments.as_slice() {
        [name] => name == ALLOW_IMPURE,
        [krate, name] => krate == ES && name == ALLOW_IMPURE,
        _ => false,
    }
}

/// Whether `attrs` hold the escape hatch. A hatch without a reason is reported: an
/// exception nobody can explain later is exactly what the check exists to prevent.
pub fn check_escape(cx: &Ctxt, attrs: &[Attribute]) -> bool {
    const MISSING: &str = "`allow_impure` needs a reason that tells a later reader why this is safe to replay: `#[es::allow_impure(reason = \"...\")]`";
    let Some(attr) = attrs.iter().find(|attr| is_escape(attr)) else {
        return false;
    };
    let Meta::List(list) = &attr.meta else {
        cx.error_spanned_by(attr, MISSING);
        return true;
    };
    let mut reason = None;
    let parsed = list.parse_nested_meta(|meta| {
        if meta.path.is_ident(REASON) {
            let value: syn::LitStr = meta.value()?.parse()?;
            reason = Some(value);
            Ok(())
        } else {
            Err(meta.error("unknown argument of `allow_impure`; the only one is `reason = \"...\"`"))
        }
    });
    match (parsed, reason) {
        (Err(error), _) => cx.syn_error(error),
        (Ok(()), None) => cx.error_spanned_by(attr, MISSING),
        (Ok(()), Some(reason)) if reason.value().trim().is_empty() => {
            cx.error_spanned_by(reason, "the reason of `allow_impure` is empty: say why this is safe to replay");
        }
        (Ok(()), Some(_)) => {}
    }
    true
}

/// Removes every escape hatch from a body, so that rustc never sees the attribute.
pub fn strip(block: &mut syn::Block) {
    Strip.visit_block_mut(block);
}

struct Strip;

impl VisitMut for Strip {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        if let Some(attrs) = expr_attrs!(expr, &mut) {
            attrs.retain(|attr| !is_escape(attr));
        }
        visit_mut::visit_expr_mut(self, expr);
    }

    fn visit_local_mut(&mut self, local: &mut syn::Local) {
        local.attrs.retain(|attr| !is_escape(attr));
        visit_mut::visit_local_mut(self, local);
    }

    fn visit_stmt_macro_mut(&mut self, mac: &mut syn::StmtMacro) {
        mac.attrs.retain(|attr| !is_escape(attr));
        visit_mut::visit_stmt_macro_mut(self, mac);
    }

    fn visit_item_mut(&mut self, item: &mut syn::Item) {
        match item {
            syn::Item::Static(item) => item.attrs.retain(|attr| !is_escape(attr)),
            syn::Item::Macro(item) => item.attrs.retain(|attr| !is_escape(attr)),
            syn::Item::Use(item) => item.attrs.retain(|attr| !is_escape(attr)),
            _ => {}
        }
        // Nested functions are checked by their own `#[es::pure]`, not stripped here.
        if !matches!(item, syn::Item::Fn(_)) {
            visit_mut::visit_item_mut(self, item);
        }
    }
}
