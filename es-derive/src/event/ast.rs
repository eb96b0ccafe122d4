//! The derive input as a typed tree: what the checks and the expansion need, with the
//! original syn nodes kept for error spans.

use syn::ext::IdentExt;
use syn::{Attribute, Data, DataEnum, DataStruct, DeriveInput, Fields, Generics, Ident, Path, Type};

use super::attr::{self, EventAttr};
use crate::ctxt::Ctxt;

pub enum Input<'a> {
    /// A struct: one event type.
    Struct(Struct<'a>),
    /// An enum: one event type per variant.
    Enum(Enum<'a>),
}

pub struct Struct<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    pub event: EventAttr,
    pub serde: Vec<Path>,
    pub fields: Vec<Field<'a>>,
}

pub struct Enum<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    /// `#[event(...)]` on the enum itself, which has no key of its own.
    pub event: EventAttr,
    pub serde: Vec<Path>,
    pub variants: Vec<Variant<'a>>,
}

pub struct Variant<'a> {
    pub ident: &'a Ident,
    pub event: EventAttr,
    pub serde: Vec<Path>,
    pub fields: Vec<Field<'a>>,
}

pub struct Field<'a> {
    pub ty: &'a Type,
    /// `#[event]` written on the field, which is always a mistake.
    pub event_attrs: Vec<&'a Attribute>,
    pub serde: Vec<Path>,
}

impl<'a> Input<'a> {
    /// Reads the input. Malformed attributes are reported to `cx` and read as far as
    /// possible; `None` means the item cannot be an event at all (a union), and that
    /// too has been reported.
    pub fn from_syn(cx: &Ctxt, node: &'a DeriveInput) -> Option<Self> {
        match &node.data {
            Data::Struct(data) => Some(Input::Struct(Struct::from_syn(cx, node, data))),
            Data::Enum(data) => Some(Input::Enum(Enum::from_syn(cx, node, data))),
            Data::Union(data) => {
                // A union's active field is known only to the code that wrote it, so
                // nothing can serialize it faithfully.
                cx.error_spanned_by(
                    data.union_token,
                    "a union cannot be an event: which field is set is not recorded anywhere, so it cannot be serialized or replayed; use an enum with one variant per case",
                );
                None
            }
        }
    }

    pub fn ident(&self) -> &'a Ident {
        match self {
            Input::Struct(input) => input.ident,
            Input::Enum(input) => input.ident,
        }
    }

    pub fn generics(&self) -> &'a Generics {
        match self {
            Input::Struct(input) => input.generics,
            Input::Enum(input) => input.generics,
        }
    }
}

impl<'a> Struct<'a> {
    fn from_syn(cx: &Ctxt, node: &'a DeriveInput, data: &'a DataStruct) -> Self {
        Self {
            ident: &node.ident,
            generics: &node.generics,
            event: attr::event_attr(cx, &node.attrs),
            serde: attr::serde_keys(&node.attrs),
            fields: Field::all(&data.fields),
        }
    }

    /// The stored type name: `#[event(name = ...)]`, or the struct's name.
    pub fn name(&self) -> String {
        type_name(&self.event, self.ident)
    }
}

impl<'a> Enum<'a> {
    fn from_syn(cx: &Ctxt, node: &'a DeriveInput, data: &'a DataEnum) -> Self {
        Self {
            ident: &node.ident,
            generics: &node.generics,
            event: attr::event_attr(cx, &node.attrs),
            serde: attr::serde_keys(&node.attrs),
            variants: data
                .variants
                .iter()
                .map(|variant| Variant {
                    ident: &variant.ident,
                    event: attr::event_attr(cx, &variant.attrs),
                    serde: attr::serde_keys(&variant.attrs),
                    fields: Field::all(&variant.fields),
                })
                .collect(),
        }
    }
}

impl Variant<'_> {
    /// The stored type name: `#[event(name = ...)]`, or the variant's name.
    pub fn name(&self) -> String {
        type_name(&self.event, self.ident)
    }
}

impl<'a> Field<'a> {
    fn all(fields: &'a Fields) -> Vec<Self> {
        fields
            .iter()
            .map(|field| Field {
                ty: &field.ty,
                event_attrs: field.attrs.iter().filter(|attr| attr.path() == &super::symbol::EVENT).collect(),
                serde: attr::serde_keys(&field.attrs),
            })
            .collect()
    }
}

impl EventAttr {
    /// The schema version: `#[event(version = ...)]`, or 1.
    pub fn version(&self) -> u32 {
        self.version.as_ref().map_or(1, |version| version.value.value)
    }
}

fn type_name(event: &EventAttr, ident: &Ident) -> String {
    match &event.name {
        Some(name) => name.value.value(),
        // `r#type` is stored as `type`: the raw marker is Rust syntax, not part of the name.
        None => ident.unraw().to_string(),
    }
}
