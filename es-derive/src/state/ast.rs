//! The state type as `#[aggregate]` reads it: its fields (of every variant) and whether
//! its `Default` is derived.

use proc_macro2::TokenStream;
use syn::punctuated::Punctuated;

use crate::ctxt::Ctxt;

pub struct Input<'a> {
    pub item: &'a syn::DeriveInput,
    pub fields: Vec<Field<'a>>,
    /// `#[derive(.., Default, ..)]` (possibly path-qualified) stands below the attribute.
    pub derives_default: bool,
}

pub struct Field<'a> {
    /// How the error names it: "field `balance`", "field `0` of variant `Paid`".
    pub name: String,
    pub ty: &'a syn::Type,
}

impl<'a> Input<'a> {
    pub fn from_syn(cx: &Ctxt, args: &TokenStream, item: &'a syn::DeriveInput) -> Self {
        if !args.is_empty() {
            cx.error_spanned_by(
                args,
                "`#[aggregate]` on the state type takes no arguments; `trust(...)` and `snapshot(...)` go on `#[aggregate]` on the `impl Aggregate` block",
            );
        }
        let mut fields = Vec::new();
        match &item.data {
            syn::Data::Struct(data) => fields.extend(named(&data.fields, None)),
            syn::Data::Enum(data) => {
                for variant in &data.variants {
                    fields.extend(named(&variant.fields, Some(&variant.ident)));
                }
            }
            syn::Data::Union(data) => cx.error_spanned_by(
                data.union_token,
                "the state of an aggregate cannot be a union: which field holds the value is known only to the code that wrote it; use an enum",
            ),
        }
        Input { item, fields, derives_default: derives_default(cx, &item.attrs) }
    }
}

fn named<'a>(fields: &'a syn::Fields, variant: Option<&syn::Ident>) -> impl Iterator<Item = Field<'a>> {
    let variant = variant.map(|variant| format!(" of variant `{variant}`")).unwrap_or_default();
    fields.iter().enumerate().map(move |(index, field)| {
        let name = field.ident.as_ref().map_or_else(|| index.to_string(), ToString::to_string);
        Field { name: format!("field `{name}`{variant}"), ty: &field.ty }
    })
}

/// Whether one of the `#[derive(..)]` lists holds `Default` or `…::Default`.
fn derives_default(cx: &Ctxt, attrs: &[syn::Attribute]) -> bool {
    let mut found = false;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("derive")) {
        match attr.parse_args_with(Punctuated::<syn::Path, syn::Token![,]>::parse_terminated) {
            Ok(paths) => {
                found |= paths.iter().any(|path| path.segments.last().is_some_and(|last| last.ident == "Default"));
            }
            Err(error) => cx.syn_error(error),
        }
    }
    found
}
