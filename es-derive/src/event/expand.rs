//! The `Event` impl of a checked input.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::Ident;

use super::ast::{Enum, Input, Struct};
use super::attr::EventAttr;

pub fn expand(input: &Input<'_>) -> TokenStream {
    let ident = input.ident();
    let params = Params::new();
    let body = match input {
        Input::Struct(input) => impl_struct(input, &params),
        Input::Enum(input) => impl_enum(input, &params),
    };
    let Params { event_type, schema_version, payload } = &params;
    // Spanned on the type's name, so that a missing serde derive is reported there
    // with the message of `Recordable`, and a field that is not `Send`/`Sync` (a
    // `Cell` behind a type alias, which the checks cannot see) is reported there once.
    let assertions = quote_spanned! {ident.span()=>
        const _: () = ::es::__private::assert_recordable::<#ident>();
        const _: () = {
            const fn assert_shareable<T: ::core::marker::Send + ::core::marker::Sync + 'static>() {}
            assert_shareable::<#ident>();
        };
    };
    let Body { types, current, decode_arms } = body;
    quote! {
        const _: () = {
            #assertions

            #[automatically_derived]
            impl ::es::Event for #ident
            where
                // Stated here so that what the assertions above report is reported
                // once, and not again for the impl and inside every method. A
                // higher-ranked bound is not checked where it is written.
                for<'__es> #ident: ::es::__private::Recordable
                    + ::core::marker::Send
                    + ::core::marker::Sync
                    + 'static,
            {
                const TYPES: &'static [::es::EventType] = &[#types];

                #[inline]
                fn event_type(&self) -> &'static ::es::EventType {
                    #current
                }

                fn encode(&self) -> ::core::result::Result<::std::string::String, ::es::EncodeError> {
                    ::es::__private::encode(self, ::es::Event::event_type(self))
                }

                fn decode(
                    #event_type: &str,
                    #schema_version: u32,
                    #payload: &str,
                ) -> ::core::result::Result<Self, ::es::DecodeError> {
                    match #event_type {
                        #decode_arms
                        other => ::core::result::Result::Err(::es::__private::unknown_type(other)),
                    }
                }
            }
        };
    }
}

/// The names of `decode`'s parameters. They are mixed-site so that an upcaster the
/// user happens to call `payload` still means the user's function.
struct Params {
    event_type: Ident,
    schema_version: Ident,
    payload: Ident,
}

impl Params {
    fn new() -> Self {
        let ident = |name| Ident::new(name, Span::mixed_site());
        Self { event_type: ident("event_type"), schema_version: ident("schema_version"), payload: ident("payload") }
    }
}

/// The parts of the impl that differ between structs and enums.
struct Body {
    /// The elements of `TYPES`.
    types: TokenStream,
    /// The body of `event_type`.
    current: TokenStream,
    /// `"name" => decode(...),` for each event type.
    decode_arms: TokenStream,
}

fn impl_struct(input: &Struct<'_>, params: &Params) -> Body {
    let name = input.name();
    let version = input.event.version();
    let arm = decode_arm(&name, 0, None, &input.event, params);
    Body {
        types: quote!(::es::EventType::new(#name, #version)),
        current: quote!(&<Self as ::es::Event>::TYPES[0]),
        decode_arms: arm,
    }
}

fn impl_enum(input: &Enum<'_>, params: &Params) -> Body {
    let mut types = TokenStream::new();
    let mut event_type_arms = TokenStream::new();
    let mut decode_arms = TokenStream::new();
    for (index, variant) in input.variants.iter().enumerate() {
        let name = variant.name();
        let version = variant.event.version();
        let ident = variant.ident;
        types.extend(quote!(::es::EventType::new(#name, #version),));
        // `{ .. }` matches unit, tuple and struct variants alike.
        event_type_arms.extend(quote!(Self::#ident { .. } => &<Self as ::es::Event>::TYPES[#index],));
        let position = u32::try_from(index).expect("an enum has fewer than 2^32 variants");
        decode_arms.extend(decode_arm(&name, index, Some(position), &variant.event, params));
    }
    Body {
        types,
        // An enum without variants has no values, so `event_type` is never called.
        current: quote!(match *self { #event_type_arms }),
        decode_arms,
    }
}

/// `"name" => decode(&TYPES[index], variant, schema_version, &[upcasters], payload),`
fn decode_arm(name: &str, index: usize, variant: Option<u32>, event: &EventAttr, params: &Params) -> TokenStream {
    let Params { schema_version, payload, .. } = params;
    let variant = variant.map_or_else(
        || quote!(::core::option::Option::None),
        |position| quote!(::core::option::Option::Some(#position)),
    );
    let steps = event.upcast.iter().flat_map(|upcast| &upcast.value).map(|step| {
        let from = step.from;
        let function = &step.function;
        // Spanned on the path, so that a function of the wrong signature is reported
        // there as a mismatch with `UpcastFn`.
        let function = quote_spanned! {function.path.segments.last().map_or_else(Span::call_site, |last| last.ident.span())=>
            {
                let step: ::es::upcast::UpcastFn = #function;
                step
            }
        };
        quote!((#from, #function))
    });
    quote! {
        #name => ::es::__private::decode::<Self>(
            &<Self as ::es::Event>::TYPES[#index],
            #variant,
            #schema_version,
            &[#(#steps),*],
            #payload,
        ),
    }
}
