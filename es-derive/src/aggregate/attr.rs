//! The arguments of `#[aggregate(...)]` and `#[es::pure(...)]`.

use proc_macro2::TokenStream;
use syn::parse::Parser;

use crate::ctxt::Ctxt;
use crate::purity::checker::parse_paths;
use crate::purity::symbol::TRUST;

/// `trust(path::to::f, Type::method, ...)`: functions of other crates the user vouches
/// for, since they cannot carry `#[es::pure]`.
#[derive(Default)]
pub struct Args {
    pub trusted: Vec<syn::Path>,
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
            } else {
                Err(meta.error("unknown argument; the only one is `trust(path::to::function, Type::method, ...)`"))
            }
        });
        if let Err(error) = parser.parse2(tokens) {
            cx.syn_error(error);
        }
        args
    }
}
