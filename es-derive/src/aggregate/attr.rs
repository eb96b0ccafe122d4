//! The arguments of `#[aggregate(...)]` and `#[es::pure(...)]`.

use proc_macro2::TokenStream;
use syn::parse::Parser;

use crate::ctxt::Ctxt;
use crate::purity::checker::parse_paths;
use syn::spanned::Spanned;

use crate::purity::symbol::{EVERY, SNAPSHOT, TRUST, VERSION};

/// `trust(path::to::f, Type::method, ...)`: functions of other crates the user vouches
/// for, since they cannot carry `#[es::pure]`. `snapshot(version = N, every = M)`: take
/// snapshots of the state (aggregates only).
#[derive(Default)]
pub struct Args {
    pub trusted: Vec<syn::Path>,
    pub snapshot: Option<Snapshot>,
}

/// `snapshot(version = N, every = M)`.
pub struct Snapshot {
    /// The keyword, for errors about where it stands.
    pub span: proc_macro2::Span,
    pub version: syn::LitInt,
    pub every: syn::LitInt,
}

fn parse_snapshot(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Snapshot> {
    let (mut version, mut every) = (None, None);
    meta.parse_nested_meta(|inner| {
        let value: syn::LitInt = inner.value()?.parse()?;
        if value.base10_parse::<u64>()? == 0 {
            return Err(syn::Error::new_spanned(&value, "must be at least 1"));
        }
        if inner.path.is_ident(VERSION) {
            value.base10_parse::<u32>()?;
            version = Some(value);
        } else if inner.path.is_ident(EVERY) {
            every = Some(value);
        } else {
            return Err(inner.error("unknown snapshot setting; use `version = N` (bump it when the state changes) and `every = M` (events between snapshots)"));
        }
        Ok(())
    })?;
    let version = version.ok_or_else(|| {
        meta.error("a snapshot needs `version = N`, the schema version of the state: bump it whenever the state or `apply` changes, so old snapshots are ignored")
    })?;
    let every = every.unwrap_or_else(|| syn::LitInt::new("100", meta.path.span()));
    Ok(Snapshot { span: meta.path.span(), version, every })
}

impl Args {
    pub fn from_tokens(cx: &Ctxt, tokens: TokenStream) -> Self {
        let mut args = Args::default();
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident(TRUST) {
                let content;
                syn::parenthesized!(content in meta.input);
                args.trusted.extend(parse_paths(content.parse()?)?);
                Ok(())
            } else if meta.path.is_ident(SNAPSHOT) {
                args.snapshot = Some(parse_snapshot(&meta)?);
                Ok(())
            } else {
                Err(meta.error(
                    "unknown argument; the arguments are `trust(path::to::function, Type::method, ...)` and `snapshot(version = N, every = M)`",
                ))
            }
        });
        if let Err(error) = parser.parse2(tokens) {
            cx.syn_error(error);
        }
        args
    }
}
