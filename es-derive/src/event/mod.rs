//! `#[derive(Event)]`: read the input, check it against the rules in `valid.rs`, then
//! expand; on any error, report every finding and expand to a placeholder instead.

mod ast;
mod attr;
mod expand;
mod fallback;
mod symbol;
mod valid;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use self::ast::Input;
use crate::ctxt::Ctxt;

pub fn derive(node: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let input = Input::from_syn(&cx, node);
    if let Some(input) = &input {
        input.validate(&cx);
    }
    match (cx.check(), input) {
        (Ok(()), Some(input)) => expand::expand(&input),
        (Err(errors), _) => fallback::expand(node, &errors),
        (Ok(()), None) => unreachable!("`Input::from_syn` reports why whenever it gives up"),
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::derive;

    #[test]
    fn a_valid_enum_expands_to_one_impl_with_one_type_per_variant() {
        let expanded = derive(&parse_quote! {
            enum AccountEvent {
                #[event(name = "account.opened", version = 2, upcast(1 = opened_v1))]
                Opened { owner: String },
                Deposited(u64),
                Frozen,
            }
        });
        let text = expanded.to_string();
        syn::parse2::<syn::File>(expanded).expect("the expansion is valid Rust");
        assert!(text.contains("assert_recordable :: < AccountEvent >"), "{text}");
        assert!(text.contains(r#"EventType :: new ("account.opened" , 2u32)"#), "{text}");
        assert!(text.contains(r#"EventType :: new ("Deposited" , 1u32)"#), "{text}");
        assert!(text.contains("Self :: Frozen { .. } => & < Self as :: es :: Event > :: TYPES [2usize]"), "{text}");
        assert!(text.contains("Some (1u32)"), "{text}");
        assert!(text.contains("(1u32 , {"), "{text}");
        assert!(!text.contains("compile_error"), "{text}");
    }

    #[test]
    fn a_valid_struct_decodes_as_a_whole() {
        let text = derive(&parse_quote!(
            struct Opened;
        ))
        .to_string();
        assert!(text.contains(r#"EventType :: new ("Opened" , 1u32)"#), "{text}");
        assert!(text.contains("Option :: None"), "{text}");
    }

    #[test]
    fn an_invalid_input_expands_to_its_errors_and_a_placeholder_impl() {
        let expanded = derive(&parse_quote! {
            struct Opened<'a> {
                #[serde(skip)]
                owner: &'a str,
            }
        });
        let text = expanded.to_string();
        syn::parse2::<syn::File>(expanded).expect("the fallback is valid Rust");
        assert_eq!(text.matches("compile_error").count(), 3, "{text}");
        assert!(text.contains("unreachable"), "{text}");
        // The placeholder must not ask for serde impls that may be missing.
        assert!(!text.contains("assert_recordable"), "{text}");
    }
}
