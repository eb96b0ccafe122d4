//! The rules an event type must follow. One `check_*` function per rule, each saying
//! why the rule exists; every finding goes to the collector, so the user sees all of
//! them at once.

use std::collections::HashMap;

use quote::ToTokens;
use syn::{GenericParam, Generics, Ident, Path, Type};

use super::ast::{Enum, Field, Input, Struct, Variant};
use super::attr::EventAttr;
use super::symbol::{
    CONTENT, DEFAULT, FROM, INTO, OTHER, SKIP, SKIP_DESERIALIZING, SKIP_SERIALIZING, SKIP_SERIALIZING_IF, Symbol, TAG,
    TRY_FROM, UNTAGGED,
};
use crate::ctxt::Ctxt;
use crate::field_type::{self, Finding, Kind};

impl Input<'_> {
    pub fn validate(&self, cx: &Ctxt) {
        check_no_generics(cx, self.generics());
        match self {
            Input::Struct(input) => input.validate(cx),
            Input::Enum(input) => input.validate(cx),
        }
    }
}

impl Struct<'_> {
    fn validate(&self, cx: &Ctxt) {
        check_event_attr(cx, &self.event);
        check_container_serde(cx, &self.serde);
        for field in &self.fields {
            field.validate(cx);
        }
    }
}

impl Enum<'_> {
    fn validate(&self, cx: &Ctxt) {
        check_no_type_keys_on_enum(cx, &self.event);
        check_container_serde(cx, &self.serde);
        check_enum_representation(cx, &self.serde);
        for variant in &self.variants {
            variant.validate(cx);
        }
        check_unique_names(cx, &self.variants);
    }
}

impl Variant<'_> {
    fn validate(&self, cx: &Ctxt) {
        check_event_attr(cx, &self.event);
        check_variant_serde(cx, &self.serde);
        for field in &self.fields {
            field.validate(cx);
        }
    }
}

impl Field<'_> {
    fn validate(&self, cx: &Ctxt) {
        check_no_event_attr_on_field(cx, self);
        check_field_serde(cx, &self.serde);
        check_field_type(cx, self.ty);
    }
}

fn check_event_attr(cx: &Ctxt, event: &EventAttr) {
    check_name_not_empty(cx, event);
    check_version_not_zero(cx, event);
    check_upcast_steps(cx, event);
}

// ---------------------------------------------------------------------------------
// The shape of the type

/// Events must be concrete, owned types. A type parameter would store payloads of
/// different shapes under one type name, so no decoder could tell them apart; a
/// lifetime means the event borrows, and a decoded event cannot borrow from a payload
/// that is dropped right after decoding (`Event` requires `'static`).
fn check_no_generics(cx: &Ctxt, generics: &Generics) {
    for param in &generics.params {
        let message = match param {
            GenericParam::Lifetime(_) => {
                "events must be owned, concrete types: a lifetime parameter means the event borrows, but a recorded event is decoded from a stored payload and must own all of its data; use owned types (`String` for `&str`, `Vec<T>` for `&[T]`)"
            }
            GenericParam::Type(_) => {
                "events must be concrete types: with a type parameter one type name would be stored with payloads of different shapes, and decoding could not tell them apart; use a concrete type, or one event type per payload shape"
            }
            GenericParam::Const(_) => {
                "events must be concrete types: with a const parameter one type name would be stored with payloads of different shapes, and decoding could not tell them apart; use a concrete type"
            }
        };
        cx.error_spanned_by(param, message);
    }
}

/// `#[event]` describes one event type, which is a struct or an enum variant; on a
/// field it would mean nothing, and silently ignoring it would hide the mistake.
fn check_no_event_attr_on_field(cx: &Ctxt, field: &Field<'_>) {
    for attr in &field.event_attrs {
        cx.error_spanned_by(
            attr,
            "`#[event(...)]` goes on the struct or on an enum variant (each one is an event type), not on a field",
        );
    }
}

// ---------------------------------------------------------------------------------
// Field types

/// Everything a field's type may not contain, wherever it is nested (`Vec<Cell<_>>`,
/// `Option<Box<&str>>`, tuples, arrays, slices); the table is shared with the state
/// check (`field_type.rs`).
///
/// Interior mutability: recorded events are immutable facts, handed out only by shared
/// reference. A value that can change behind `&` would let code alter an event after
/// it was recorded, so the state folded right after a command would differ from the
/// state a replay rebuilds from the store.
///
/// References, raw pointers, `fn` pointers, `impl Trait` and `dyn Trait`: none of them
/// is data that can be written to a store and read back. A decoded event owns its data.
fn check_field_type(cx: &Ctxt, ty: &Type) {
    let refused = |kind| {
        matches!(
            kind,
            Kind::InteriorMutability
                | Kind::Reference
                | Kind::RawPointer
                | Kind::FnPointer
                | Kind::ImplTrait
                | Kind::TraitObject
        )
    };
    for finding in field_type::find(ty, refused) {
        cx.error_spanned_by(finding.ty, why_unrecordable(&finding));
    }
}

fn why_unrecordable(finding: &Finding<'_>) -> String {
    match finding.kind {
        Kind::Reference => "a reference cannot be recorded: a decoded event owns all of its data (an event is `'static` and decoded from a payload that is dropped right after); use an owned type such as `String`, `Vec<T>` or `Box<T>`".to_owned(),
        Kind::RawPointer => "a raw pointer cannot be recorded: an address means nothing once the process is gone; store the value it points to".to_owned(),
        Kind::FnPointer => "a function pointer cannot be recorded: code is not data and has no stored form; record the data that chooses the behaviour, for example an enum".to_owned(),
        Kind::ImplTrait => "`impl Trait` cannot be recorded: an event's fields must be concrete data that can be stored and decoded; name a concrete type".to_owned(),
        Kind::TraitObject => "a trait object cannot be recorded: decoding needs to know the concrete type to build; use an enum of the possible types".to_owned(),
        _ => format!(
            "`{}` gives interior mutability, but a recorded event is an immutable fact: it is handed out only by shared reference, and a value that can change behind `&` would let code alter history, so replays would disagree with what was recorded; store the plain value instead",
            finding.name,
        ),
    }
}

// ---------------------------------------------------------------------------------
// `#[serde(...)]`

/// A serde key an event refuses, and why, as it is shown to the user.
struct Refused {
    key: Symbol,
    why: &'static str,
}

/// Every field must be recorded and read back exactly as it was. A skipped field is
/// rebuilt from `Default` on replay; a defaulted field invents data for old payloads
/// that never had it, silently, where an upcaster would say so in code.
const FIELD_SERDE: &[Refused] = &[
    Refused {
        key: SKIP,
        why: "`#[serde(skip)]` leaves this field out of the stored payload, so every replay would rebuild it from `Default` instead of what was recorded; an event must record every field: remove the attribute, or move the field out of the event",
    },
    Refused {
        key: SKIP_SERIALIZING,
        why: "`#[serde(skip_serializing)]` leaves this field out of the stored payload, so it would be lost on replay; an event must record every field: remove the attribute, or move the field out of the event",
    },
    Refused {
        key: SKIP_DESERIALIZING,
        why: "`#[serde(skip_deserializing)]` ignores the stored value and rebuilds this field from `Default` on every replay; an event must replay as it was recorded: remove the attribute, or move the field out of the event",
    },
    Refused {
        key: SKIP_SERIALIZING_IF,
        why: "`#[serde(skip_serializing_if = ...)]` leaves this field out of the stored payload whenever the predicate holds, and decoding would then have to invent a value for it; an event must record every field: remove the attribute (an `Option` is stored as `null`)",
    },
    Refused {
        key: DEFAULT,
        why: "`#[serde(default)]` silently invents a value for this field whenever an old payload lacks it; make the change explicit with an upcaster: bump `version` in `#[event(...)]` and add `upcast(N = function)` that inserts the field into payloads of version N",
    },
];

/// A default on the whole type invents every missing field; see [`FIELD_SERDE`].
const CONTAINER_SERDE: &[Refused] = &[Refused {
    key: DEFAULT,
    why: "`#[serde(default)]` on the type silently invents a value for every field an old payload lacks; make the change explicit with an upcaster: bump `version` in `#[event(...)]` and add `upcast(N = function)` that fills in the fields missing from payloads of version N",
}];

/// A variant's payload is stored without a tag (the stored type name is the tag) and
/// decoded straight into the variant that name selects, by the variant's position.
/// That needs the impl serde derives for the enum itself, in its default (externally
/// tagged) form.
const ENUM_SERDE: &[Refused] = &[
    Refused {
        key: TAG,
        why: "`#[serde(tag = ...)]` changes how the enum is tagged, but `es` stores each event's type name beside its payload and decodes the payload straight into the variant that name selects, which needs serde's default representation; remove the attribute (a variant's `#[event(name = ...)]` is its tag)",
    },
    Refused {
        key: CONTENT,
        why: "`#[serde(content = ...)]` changes how the enum is tagged, but `es` stores each event's type name beside its payload and decodes the payload straight into the variant that name selects, which needs serde's default representation; remove the attribute",
    },
    Refused {
        key: UNTAGGED,
        why: "`#[serde(untagged)]` makes serde guess the variant from the payload's shape, but `es` decodes the payload straight into the variant its stored type name selects, which needs serde's default representation; remove the attribute",
    },
    Refused {
        key: FROM,
        why: "`#[serde(from = ...)]` replaces the enum's derived `Deserialize`, but `es` decodes a payload straight into the variant its stored type name selects, which needs the impl serde derives for this enum; remove the attribute and convert where the event is built",
    },
    Refused {
        key: TRY_FROM,
        why: "`#[serde(try_from = ...)]` replaces the enum's derived `Deserialize`, but `es` decodes a payload straight into the variant its stored type name selects, which needs the impl serde derives for this enum; remove the attribute and validate where the event is built",
    },
    Refused {
        key: INTO,
        why: "`#[serde(into = ...)]` replaces the enum's derived `Serialize`, but `es` stores each variant's content under the variant's own type name, which needs the impl serde derives for this enum; remove the attribute and convert where the event is built",
    },
];

/// Every variant is an event type that must be written and read back. A skipped
/// variant cannot be, and it shifts the positions of the variants after it, which is
/// what `es` decodes by. `other` and `untagged` would replay a different event than
/// the one recorded instead of reporting an unknown or undecodable one.
const VARIANT_SERDE: &[Refused] = &[
    Refused {
        key: SKIP,
        why: "`#[serde(skip)]` on a variant: a variant that cannot be written or read back cannot be recorded, and skipping it shifts the positions `es` decodes the other variants by; move this variant out of the event enum",
    },
    Refused {
        key: SKIP_SERIALIZING,
        why: "`#[serde(skip_serializing)]` on a variant: a variant that cannot be written cannot be recorded; move this variant out of the event enum",
    },
    Refused {
        key: SKIP_DESERIALIZING,
        why: "`#[serde(skip_deserializing)]` on a variant: a recorded variant that cannot be read back breaks every replay, and skipping it shifts the positions `es` decodes the other variants by; move this variant out of the event enum",
    },
    Refused {
        key: OTHER,
        why: "`#[serde(other)]` would replay an unknown event as this variant; `es` reports a stored type name that no variant has as `DecodeError::UnknownType` instead of silently replaying something else; remove the attribute",
    },
    Refused {
        key: UNTAGGED,
        why: "`#[serde(untagged)]` on a variant makes serde guess it from the payload's shape, but `es` decodes a payload straight into the variant its stored type name selects; remove the attribute",
    },
];

fn check_refused(cx: &Ctxt, keys: &[Path], refused: &[Refused]) {
    for key in keys {
        if let Some(rule) = refused.iter().find(|rule| *key == rule.key) {
            cx.error_spanned_by(key, rule.why);
        }
    }
}

/// See [`FIELD_SERDE`].
fn check_field_serde(cx: &Ctxt, keys: &[Path]) {
    check_refused(cx, keys, FIELD_SERDE);
}

/// See [`CONTAINER_SERDE`].
fn check_container_serde(cx: &Ctxt, keys: &[Path]) {
    check_refused(cx, keys, CONTAINER_SERDE);
}

/// See [`ENUM_SERDE`].
fn check_enum_representation(cx: &Ctxt, keys: &[Path]) {
    check_refused(cx, keys, ENUM_SERDE);
}

/// See [`VARIANT_SERDE`].
fn check_variant_serde(cx: &Ctxt, keys: &[Path]) {
    check_refused(cx, keys, VARIANT_SERDE);
}

// ---------------------------------------------------------------------------------
// `#[event(...)]`

/// On an enum, every variant is its own event type with its own name, version and
/// upcasters; a value on the enum would be ambiguous (a prefix? a default? for every
/// variant?), so it is refused rather than guessed.
fn check_no_type_keys_on_enum(cx: &Ctxt, event: &EventAttr) {
    let keys = [
        event.name.as_ref().map(|name| (&name.key, "name = \"...\"")),
        event.version.as_ref().map(|version| (&version.key, "version = N")),
        event.upcast.as_ref().map(|upcast| (&upcast.key, "upcast(N = function)")),
    ];
    for (key, example) in keys.into_iter().flatten() {
        cx.error_spanned_by(
            key,
            format!(
                "`{}` on the enum: each variant of an event enum is its own event type, with its own name, version and upcasters; put `#[event({example})]` on the variant it describes",
                key.to_token_stream(),
            ),
        );
    }
}

/// The name is stored beside every payload and selects the type when decoding; an
/// empty one is certainly a mistake and would be invisible in the store.
fn check_name_not_empty(cx: &Ctxt, event: &EventAttr) {
    if let Some(name) = &event.name
        && name.value.value().trim().is_empty()
    {
        cx.error_spanned_by(
            &name.value,
            "an event type name cannot be empty: it is stored beside every payload and selects the type when decoding",
        );
    }
}

/// Schema versions count from 1, and each version below the current one is a step an
/// upcaster may start from; a version 0 has no meaning.
fn check_version_not_zero(cx: &Ctxt, event: &EventAttr) {
    if let Some(version) = &event.version
        && version.value.value == 0
    {
        cx.error_spanned_by(
            &version.value.lit,
            "schema versions start at 1: an event's first version is 1, and every change that needs an upcaster adds 1",
        );
    }
}

/// An upcaster `N = f` turns a version-N payload into version N + 1, so N must be an
/// older version (1 ≤ N < version), and one N must have one step: two would make the
/// outcome depend on which one runs. Missing steps are allowed (some old versions may
/// never have been stored); decoding one reports `DecodeError::NoUpcastPath`.
fn check_upcast_steps(cx: &Ctxt, event: &EventAttr) {
    let Some(upcast) = &event.upcast else { return };
    let version = event.version();
    let mut seen: HashMap<u32, &syn::ExprPath> = HashMap::new();
    for step in &upcast.value {
        if step.from == 0 {
            cx.error_spanned_by(&step.from_lit, "schema versions start at 1, so there is no version 0 to upcast from");
        } else if step.from >= version {
            let fix = if event.version.is_some() {
                format!("raise `version` to {} if this step is new", u64::from(step.from) + 1)
            } else {
                format!("add `version = {}` if this step is new", u64::from(step.from) + 1)
            };
            cx.error_spanned_by(
                &step.from_lit,
                format!(
                    "`upcast({from} = ...)` upgrades version {from} payloads to version {next}, but this event is at version {version}; an upcaster must start from an older version: {fix}",
                    from = step.from,
                    next = u64::from(step.from) + 1,
                ),
            );
        }
        if let Some(first) = seen.get(&step.from) {
            cx.error_spanned_by(
                &step.from_lit,
                format!(
                    "a second upcaster from version {} (the first is `{}`); each version has exactly one step to the next",
                    step.from,
                    first.to_token_stream(),
                ),
            );
        } else {
            seen.insert(step.from, &step.function);
        }
    }
}

/// The stored name selects the variant when decoding; two variants with one name
/// would make the second unreachable (or the first, depending on the match order).
fn check_unique_names(cx: &Ctxt, variants: &[Variant<'_>]) {
    let mut first_with: HashMap<String, &Ident> = HashMap::new();
    for variant in variants {
        let name = variant.name();
        if let Some(first) = first_with.get(&name) {
            let message = format!(
                "event type name `{name}` is already used by variant `{first}`; the stored name selects the variant when decoding, so each variant needs its own: give one of them `#[event(name = \"...\")]`",
            );
            match &variant.event.name {
                Some(explicit) => cx.error_spanned_by(&explicit.value, message),
                None => cx.error_spanned_by(variant.ident, message),
            }
        } else {
            first_with.insert(name, variant.ident);
        }
    }
}

#[cfg(test)]
mod tests {
    use syn::{DeriveInput, parse_quote};

    use super::super::ast::Input;
    use crate::ctxt::Ctxt;

    /// The messages of every finding on `input`, in order.
    fn findings(input: &DeriveInput) -> Vec<String> {
        let cx = Ctxt::new();
        if let Some(input) = Input::from_syn(&cx, input) {
            input.validate(&cx);
        }
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(errors) => errors.into_iter().map(|error| error.to_string()).collect(),
        }
    }

    fn assert_clean(input: &DeriveInput) {
        let found = findings(input);
        assert!(found.is_empty(), "unexpected findings: {found:#?}");
    }

    fn assert_one(input: &DeriveInput, needle: &str) {
        let found = findings(input);
        assert_eq!(found.len(), 1, "expected one finding, got {found:#?}");
        assert!(found[0].contains(needle), "`{needle}` not in {:?}", found[0]);
    }

    #[test]
    fn three_bad_fields_give_three_findings() {
        let input = parse_quote! {
            struct Opened {
                a: std::cell::RefCell<u32>,
                b: &'static str,
                #[serde(skip)]
                c: u32,
            }
        };
        assert_eq!(findings(&input).len(), 3);
    }

    #[test]
    fn ordinary_owned_types_pass() {
        assert_clean(&parse_quote! {
            struct Opened {
                names: Vec<String>,
                balances: std::collections::HashMap<String, u64>,
                parent: Option<Box<Foo>>,
                cell: u32,
                mutex_name: String,
                pair: (u8, [u16; 4]),
                ratio: f64,
                shared: std::sync::Arc<str>,
                text: std::borrow::Cow<'static, str>,
                when: chrono::DateTime<chrono::Utc>,
                atomicity: Atomicity,
            }
        });
        assert_clean(&parse_quote! {
            #[serde(rename_all = "camelCase", deny_unknown_fields)]
            enum AccountEvent {
                #[event(name = "account.opened", version = 3, upcast(1 = v1, 2 = crate::up::v2))]
                #[serde(rename = "opened")]
                Opened { #[serde(rename = "o", with = "module")] owner: String },
                Closed,
                Moved(u64, #[serde(flatten)] Extra),
            }
        });
    }

    #[test]
    fn interior_mutability_is_found_anywhere_in_a_type() {
        for ty in [
            quote::quote!(Cell<u8>),
            quote::quote!(std::cell::RefCell<u8>),
            quote::quote!(core::cell::UnsafeCell<u8>),
            quote::quote!(OnceCell<u8>),
            quote::quote!(std::sync::OnceLock<u8>),
            quote::quote!(LazyLock<u8>),
            quote::quote!(std::cell::LazyCell<u8>),
            quote::quote!(std::sync::Mutex<u8>),
            quote::quote!(tokio::sync::RwLock<u8>),
            quote::quote!(std::sync::atomic::AtomicU64),
            quote::quote!(AtomicBool),
            quote::quote!(Vec<RwLock<String>>),
            quote::quote!(Option<Box<Cell<u8>>>),
            quote::quote!((u8, Mutex<u8>)),
            quote::quote!([AtomicUsize; 4]),
            quote::quote!(Box<[Cell<u8>]>),
            quote::quote!(std::collections::HashMap<String, Vec<RefCell<u8>>>),
        ] {
            assert_one(&parse_quote! { struct E { field: #ty } }, "interior mutability");
        }
    }

    #[test]
    fn unrecordable_types_are_found_anywhere_in_a_type() {
        for (ty, needle) in [
            (quote::quote!(&'static str), "a reference"),
            (quote::quote!(Vec<&'static [u8]>), "a reference"),
            (quote::quote!(*const u8), "a raw pointer"),
            (quote::quote!(Option<*mut u8>), "a raw pointer"),
            (quote::quote!(fn(u32) -> u32), "a function pointer"),
            (quote::quote!((u8, fn())), "a function pointer"),
            (quote::quote!(Box<dyn Fn(u32)>), "a trait object"),
            (quote::quote!(Box<dyn std::any::Any + Send + Sync>), "a trait object"),
            (quote::quote!(impl Iterator<Item = u8>), "`impl Trait`"),
        ] {
            assert_one(&parse_quote! { struct E(#ty); }, needle);
        }
    }

    #[test]
    fn a_nested_problem_inside_interior_mutability_is_reported_too() {
        let found = findings(&parse_quote! { struct E { lock: Mutex<&'static str> } });
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    #[test]
    fn serde_skips_and_defaults_are_refused_on_fields() {
        for attr in [
            quote::quote!(#[serde(skip)]),
            quote::quote!(#[serde(skip_serializing)]),
            quote::quote!(#[serde(skip_deserializing)]),
            quote::quote!(#[serde(skip_serializing_if = "Option::is_none")]),
            quote::quote!(#[serde(default)]),
            quote::quote!(#[serde(default = "zero")]),
            quote::quote!(#[serde(rename = "x", default)]),
        ] {
            assert_eq!(findings(&parse_quote! { struct E { #attr field: Option<u8> } }).len(), 1, "{attr}");
            assert_eq!(findings(&parse_quote! { enum E { V { #attr field: u8 } } }).len(), 1, "{attr}");
            assert_eq!(findings(&parse_quote! { enum E { V(#attr u8) } }).len(), 1, "{attr}");
        }
    }

    #[test]
    fn serde_default_is_refused_on_the_container() {
        assert_one(&parse_quote! { #[serde(default)] struct E { a: u8 } }, "on the type");
        assert_one(&parse_quote! { #[serde(default = "E::new")] struct E { a: u8 } }, "on the type");
    }

    #[test]
    fn enum_representation_must_stay_serde_default() {
        assert_one(&parse_quote! { #[serde(tag = "type")] enum E { A } }, "tag");
        assert_eq!(findings(&parse_quote! { #[serde(tag = "t", content = "c")] enum E { A } }).len(), 2);
        assert_one(&parse_quote! { #[serde(untagged)] enum E { A } }, "untagged");
        assert_one(&parse_quote! { #[serde(from = "Other")] enum E { A } }, "from");
        assert_one(&parse_quote! { #[serde(into = "Other")] enum E { A } }, "into");
        // On a struct the tag is just one more field and decoding is unaffected.
        assert_clean(&parse_quote! { #[serde(tag = "type")] struct E { a: u8 } });
        assert_clean(&parse_quote! { #[serde(from = "Raw", into = "Raw")] struct E { a: u8 } });
    }

    #[test]
    fn variant_attributes_that_hide_or_guess_variants_are_refused() {
        for attr in [
            quote::quote!(#[serde(skip)]),
            quote::quote!(#[serde(skip_serializing)]),
            quote::quote!(#[serde(skip_deserializing)]),
            quote::quote!(#[serde(other)]),
            quote::quote!(#[serde(untagged)]),
        ] {
            assert_eq!(findings(&parse_quote! { enum E { A, #attr B } }).len(), 1, "{attr}");
        }
    }

    #[test]
    fn duplicate_names_point_at_the_second_and_name_the_first() {
        assert_one(
            &parse_quote! {
                enum E {
                    #[event(name = "x")]
                    A,
                    #[event(name = "x")]
                    B,
                }
            },
            "already used by variant `A`",
        );
        // A default name can collide with an explicit one.
        assert_one(&parse_quote! { enum E { A, #[event(name = "A")] B } }, "`A`");
        // Raw identifiers are named without `r#`.
        assert_one(&parse_quote! { enum E { r#type, #[event(name = "type")] B } }, "`type`");
    }

    #[test]
    fn generics_lifetimes_and_unions_are_refused() {
        assert_one(&parse_quote! { struct E<T> { a: T } }, "type parameter");
        assert_one(&parse_quote! { struct E<const N: usize> { a: [u8; N] } }, "const parameter");
        // The lifetime parameter and the reference are two findings.
        assert_eq!(findings(&parse_quote! { struct E<'a> { a: &'a str } }).len(), 2);
        assert_one(&parse_quote! { union E { a: u8 } }, "union");
    }

    #[test]
    fn event_attribute_values_are_checked() {
        assert_one(&parse_quote! { #[event(nmae = "x")] struct E; }, "unknown key `nmae`");
        assert_one(&parse_quote! { #[event(name = x)] struct E; }, "string literal");
        assert_one(&parse_quote! { #[event(name = "")] struct E; }, "cannot be empty");
        assert_one(&parse_quote! { #[event(version = 0)] struct E; }, "start at 1");
        assert_one(&parse_quote! { #[event(version = "2")] struct E; }, "integer literal");
        assert_one(&parse_quote! { #[event(name = "a", name = "b")] struct E; }, "duplicate `name`");
        assert_one(&parse_quote! { #[event(version = 2, upcast(2 = f))] struct E; }, "older version");
        assert_one(&parse_quote! { #[event(upcast(1 = f))] struct E; }, "add `version = 2`");
        assert_one(&parse_quote! { #[event(version = 3, upcast(0 = f))] struct E; }, "no version 0");
        assert_one(&parse_quote! { #[event(version = 3, upcast(1 = f, 1 = g))] struct E; }, "the first is `f`");
        assert_one(&parse_quote! { #[event(version = 3, upcast(v1 = f))] struct E; }, "N = path");
        assert_one(&parse_quote! { #[event = "x"] struct E; }, "expected `#[event(...)]`");
        assert_one(&parse_quote! { struct E { #[event(name = "x")] a: u8 } }, "not on a field");
        assert_one(&parse_quote! { #[event(name = "x")] enum E { A } }, "put `#[event(name");
        assert_clean(&parse_quote! { #[event] enum E { #[event] A } });
        assert_clean(&parse_quote! { #[event(version = 4, upcast(1 = a, 3 = b::c))] struct E; });
    }

    #[test]
    fn every_finding_is_reported_at_once() {
        let input = parse_quote! {
            #[serde(tag = "t")]
            enum E<'a> {
                #[event(version = 0)]
                A(&'a str),
                #[event(name = "A", bogus)]
                B { #[serde(default)] c: Vec<RwLock<u8>> },
            }
        };
        // tag, lifetime, version 0, reference, unknown key, duplicate name, default, RwLock.
        assert_eq!(findings(&input).len(), 8, "{:#?}", findings(&input));
    }
}
