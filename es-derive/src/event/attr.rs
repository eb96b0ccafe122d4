//! Parsing `#[event(...)]` and reading the keys of `#[serde(...)]`.
//!
//! Only the syntax is checked here (known keys, literal kinds, no key twice); what the
//! values mean (a version of 0, an upcaster above the version, …) is checked in
//! `valid.rs`, so that every finding is reported together.

use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, ExprLit, ExprPath, Lit, LitInt, LitStr, Meta, Path, Token, token};

use super::symbol::{EVENT, NAME, SERDE, UPCAST, VERSION};
use crate::ctxt::Ctxt;

/// Everything the `#[event(...)]` attributes of one item say.
#[derive(Default)]
pub struct EventAttr {
    pub name: Option<Keyed<LitStr>>,
    pub version: Option<Keyed<Version>>,
    pub upcast: Option<Keyed<Vec<UpcastStep>>>,
}

/// A value together with the key it was written under, for errors about the key.
pub struct Keyed<T> {
    pub key: Path,
    pub value: T,
}

/// `version = N`.
pub struct Version {
    pub lit: LitInt,
    pub value: u32,
}

/// `N = path::to::function` inside `upcast(...)`.
pub struct UpcastStep {
    pub from_lit: LitInt,
    pub from: u32,
    pub function: ExprPath,
}

impl Parse for UpcastStep {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let from_lit: LitInt = input.parse().map_err(|error| {
            syn::Error::new(
                error.span(),
                "expected `N = path::to::function` in `upcast(...)`, where N is the schema version the function upgrades from",
            )
        })?;
        let from = from_lit.base10_parse::<u32>()?;
        input.parse::<Token![=]>()?;
        let function = input.parse()?;
        Ok(Self { from_lit, from, function })
    }
}

/// Reads every `#[event(...)]` among `attrs`. Syntax errors go to `cx`; whatever
/// could be read is returned, so that later checks still run.
pub fn event_attr(cx: &Ctxt, attrs: &[Attribute]) -> EventAttr {
    let mut out = EventAttr::default();
    for attr in attrs.iter().filter(|attr| attr.path() == &EVENT) {
        match &attr.meta {
            // A bare `#[event]` keeps every default.
            Meta::Path(_) => {}
            Meta::NameValue(_) => cx.error_spanned_by(
                attr,
                format!("expected `#[event(...)]` with keys, for example `#[event(name = \"account.opened\", version = 2)]`; valid keys: {}", valid_keys()),
            ),
            Meta::List(_) => {
                if let Err(error) = attr.parse_nested_meta(|meta| parse_key(cx, &mut out, &meta)) {
                    cx.syn_error(error);
                }
            }
        }
    }
    out
}

fn parse_key(cx: &Ctxt, out: &mut EventAttr, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.path == NAME {
        match meta.value()?.parse::<Expr>()? {
            Expr::Lit(ExprLit { lit: Lit::Str(name), .. }) => set(cx, &mut out.name, meta, name),
            other => {
                cx.error_spanned_by(other, "`name` must be a string literal, for example `name = \"account.opened\"`");
            }
        }
    } else if meta.path == VERSION {
        match meta.value()?.parse::<Expr>()? {
            Expr::Lit(ExprLit { lit: Lit::Int(lit), .. }) => match lit.base10_parse::<u32>() {
                Ok(value) => set(cx, &mut out.version, meta, Version { lit, value }),
                Err(_) => cx.error_spanned_by(&lit, "`version` must be an integer from 1 to 4294967295 (a `u32`)"),
            },
            other => cx.error_spanned_by(other, "`version` must be an integer literal, for example `version = 2`"),
        }
    } else if meta.path == UPCAST {
        if !meta.input.peek(token::Paren) {
            skip_value(meta)?;
            cx.error_spanned_by(
                &meta.path,
                "expected `upcast(N = path::to::function, ...)`: one step per schema version N the function upgrades from",
            );
            return Ok(());
        }
        let content;
        syn::parenthesized!(content in meta.input);
        let steps = Punctuated::<UpcastStep, Token![,]>::parse_terminated(&content)?;
        set(cx, &mut out.upcast, meta, steps.into_iter().collect());
    } else {
        skip_value(meta)?;
        cx.error_spanned_by(
            &meta.path,
            format!("unknown key `{}` in #[event(...)]; valid keys: {}", meta.path.to_token_stream(), valid_keys()),
        );
    }
    Ok(())
}

/// Stores a key's value, refusing a key given twice (the second one would silently win).
fn set<T>(cx: &Ctxt, slot: &mut Option<Keyed<T>>, meta: &ParseNestedMeta<'_>, value: T) {
    if slot.is_some() {
        cx.error_spanned_by(
            &meta.path,
            format!("duplicate `{}` in #[event(...)]; give it once", meta.path.to_token_stream()),
        );
    } else {
        *slot = Some(Keyed { key: meta.path.clone(), value });
    }
}

fn valid_keys() -> String {
    format!("`{NAME} = \"...\"`, `{VERSION} = N`, `{UPCAST}(N = path::to::function, ...)`")
}

/// The keys written in every `#[serde(...)]` among `attrs`, as written (so that
/// errors point at them). Values are skipped: only the presence of a key matters to
/// the checks. An attribute serde itself cannot parse is left to serde to report.
pub fn serde_keys(attrs: &[Attribute]) -> Vec<Path> {
    let mut keys = Vec::new();
    for attr in attrs.iter().filter(|attr| attr.path() == &SERDE) {
        let _ = attr.parse_nested_meta(|meta| {
            keys.push(meta.path.clone());
            skip_value(&meta)
        });
    }
    keys
}

/// Skips `= value` or `(...)` after a key.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(token::Paren) {
        meta.input.parse::<proc_macro2::Group>()?;
    }
    Ok(())
}
