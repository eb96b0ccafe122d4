//! The parsed input of `#[aggregate]`: the impl block, its handlers and the arguments.

use proc_macro2::TokenStream;

use super::attr::Args;
use crate::ctxt::Ctxt;

/// The handlers whose signature is fixed by the `Aggregate` trait.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// `fn apply(&mut self, event: &Self::Event)`
    Apply,
    /// `fn apply_recorded(&mut self, recorded: &Recorded<Self::Event>)`
    ApplyRecorded,
    /// Anything else in the impl (`stream_type`): only its body is checked.
    Other,
}

impl Handler {
    pub fn of(function: &syn::ImplItemFn) -> Self {
        match function.sig.ident.to_string().as_str() {
            "apply" => Handler::Apply,
            "apply_recorded" => Handler::ApplyRecorded,
            _ => Handler::Other,
        }
    }
}

pub struct Input {
    pub item: syn::ItemImpl,
    pub args: Args,
    /// The type's own name (`Cart` in `impl Aggregate for Cart<T>`).
    pub self_name: Option<String>,
}

impl Input {
    /// Parses the attribute's input. Anything other than an impl block is an error that
    /// leaves the item untouched.
    pub fn from_syn(cx: &Ctxt, args: TokenStream, input: TokenStream) -> Result<Self, TokenStream> {
        let args = Args::from_tokens(cx, args);
        let item = match syn::parse2::<syn::Item>(input.clone()) {
            Ok(syn::Item::Impl(item)) => item,
            Ok(other) => {
                cx.error_spanned_by(&other, "`#[aggregate]` goes on an `impl Aggregate for T` block and on the state type `T` (a struct or an enum)");
                return Err(input);
            }
            Err(error) => {
                cx.syn_error(error);
                return Err(input);
            }
        };
        let self_name = match &*item.self_ty {
            syn::Type::Path(path) => path.path.segments.last().map(|segment| segment.ident.to_string()),
            _ => None,
        };
        Ok(Input { item, args, self_name })
    }
}
