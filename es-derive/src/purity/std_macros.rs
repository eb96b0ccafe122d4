//! Known-pure macros mean std's macros. The checker accepts `vec!`, `format!`,
//! `write!`, `matches!`, `assert!`, … because it knows what std's expand to; a local
//! `macro_rules! vec` in the caller's scope would otherwise be used instead. So every
//! accepted invocation is rewritten to its absolute path (`::std::vec!`), keeping the
//! spans, and so are the invocations nested in its arguments.

use proc_macro2::{Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};
use syn::visit_mut::{self, VisitMut};

use super::escape::expr_attrs_mut;
use super::forbidden::PURE_MACROS;

/// Rewrites every accepted macro in `block` to std's. Statements and expressions under
/// `#[es::allow_impure]` are left as written: they were not checked.
pub fn rewrite(block: &mut syn::Block) {
    Rewrite.visit_block_mut(block);
}

fn is_pure(name: &str) -> bool {
    PURE_MACROS.iter().any(|(pure, _)| *pure == name)
}

fn is_escaped(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(super::escape::is_escape)
}

/// `vec` or `std::vec` / `core::vec` / `alloc::vec` (with or without a leading `::`).
fn std_name(path: &syn::Path) -> Option<Ident> {
    let segments: Vec<&syn::PathSegment> = path.segments.iter().collect();
    let last = match segments.as_slice() {
        [only] if path.leading_colon.is_none() => only,
        [root, last] if ["std", "core", "alloc"].iter().any(|krate| root.ident == krate) => last,
        _ => return None,
    };
    is_pure(&last.ident.to_string()).then(|| last.ident.clone())
}

fn absolute(name: &Ident) -> syn::Path {
    let span = name.span();
    let std = Ident::new("std", span);
    syn::parse_quote_spanned!(span=> ::#std::#name)
}

fn rewrite_macro(mac: &mut syn::Macro) {
    if let Some(name) = std_name(&mac.path) {
        mac.path = absolute(&name);
        mac.tokens = rewrite_tokens(std::mem::take(&mut mac.tokens));
    }
}

/// `name ! (..)` inside the arguments of an accepted macro, where `name` is a known-pure
/// macro not already behind a path, becomes `::std::name ! (..)`.
fn rewrite_tokens(tokens: TokenStream) -> TokenStream {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::with_capacity(tokens.len());
    let is_punct = |index: Option<usize>, ch: char| matches!(index.and_then(|index| tokens.get(index)), Some(TokenTree::Punct(punct)) if punct.as_char() == ch);
    for (index, token) in tokens.iter().enumerate() {
        match token {
            // `core::matches!(..)` → `::std::matches!(..)`
            TokenTree::Ident(root)
                if ["std", "core", "alloc"].iter().any(|krate| root == krate)
                    && !is_punct(index.checked_sub(1), ':')
                    && is_punct(Some(index + 1), ':')
                    && is_punct(Some(index + 2), ':')
                    && matches!(tokens.get(index + 3), Some(TokenTree::Ident(name)) if is_pure(&name.to_string()))
                    && is_punct(Some(index + 4), '!') =>
            {
                let mut prefix = std_prefix(root.span());
                prefix.truncate(3); // `::std`, the next `::` follows in the input
                out.extend(prefix);
            }
            TokenTree::Ident(ident)
                if is_pure(&ident.to_string())
                    && matches!(tokens.get(index + 1), Some(TokenTree::Punct(bang)) if bang.as_char() == '!')
                    && matches!(tokens.get(index + 2), Some(TokenTree::Group(_)))
                    && !matches!(index.checked_sub(1).and_then(|before| tokens.get(before)),
                        Some(TokenTree::Punct(punct)) if punct.as_char() == ':' || punct.as_char() == '.') =>
            {
                out.extend(std_prefix(ident.span()));
                out.push(token.clone());
            }
            TokenTree::Group(group) => {
                let mut inner = Group::new(group.delimiter(), rewrite_tokens(group.stream()));
                inner.set_span(group.span());
                out.push(TokenTree::Group(inner));
            }
            other => out.push(other.clone()),
        }
    }
    out.into_iter().collect()
}

/// `::std::`
fn std_prefix(span: Span) -> Vec<TokenTree> {
    let colons = |spacing_last| {
        let mut first = Punct::new(':', Spacing::Joint);
        first.set_span(span);
        let mut second = Punct::new(':', spacing_last);
        second.set_span(span);
        [TokenTree::Punct(first), TokenTree::Punct(second)]
    };
    let mut out = Vec::new();
    out.extend(colons(Spacing::Alone));
    out.push(TokenTree::Ident(Ident::new("std", span)));
    out.extend(colons(Spacing::Alone));
    out
}

struct Rewrite;

impl VisitMut for Rewrite {
    fn visit_expr_mut(&mut self, expr: &mut syn::Expr) {
        if expr_attrs_mut(expr).is_some_and(|attrs| is_escaped(attrs)) {
            return;
        }
        if let syn::Expr::Macro(mac) = expr {
            rewrite_macro(&mut mac.mac);
            return;
        }
        visit_mut::visit_expr_mut(self, expr);
    }

    fn visit_stmt_macro_mut(&mut self, mac: &mut syn::StmtMacro) {
        if !is_escaped(&mac.attrs) {
            rewrite_macro(&mut mac.mac);
        }
    }

    fn visit_local_mut(&mut self, local: &mut syn::Local) {
        if !is_escaped(&local.attrs) {
            visit_mut::visit_local_mut(self, local);
        }
    }

    fn visit_item_mut(&mut self, item: &mut syn::Item) {
        // Only macros used as items in the body; nested functions are rewritten by
        // their own `#[es::pure]`.
        if let syn::Item::Macro(mac) = item
            && !is_escaped(&mac.attrs)
            && mac.ident.is_none()
        {
            rewrite_macro(&mut mac.mac);
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::ToTokens;

    use super::*;

    fn rewritten(mut block: syn::Block) -> String {
        rewrite(&mut block);
        block.to_token_stream().to_string().replace(' ', "")
    }

    #[test]
    fn accepted_macros_and_their_nested_macros_become_std_paths() {
        let out = rewritten(syn::parse_quote!({
            let v = vec![format!("{}", 1)];
            assert_eq!(v.len(), core::matches!(x, Some(_)) as usize, "{}", format!("x"));
            write!(out, "{}", vec![1].len()).unwrap();
        }));
        assert!(out.contains("::std::vec![::std::format!"), "{out}");
        assert!(out.contains("::std::assert_eq!(v.len(),::std::matches!(x,Some(_))"), "{out}");
        assert!(out.contains("::std::format!(\"x\")"), "{out}");
        assert!(out.contains("::std::write!(out,\"{}\",::std::vec![1].len())"), "{out}");
    }

    #[test]
    fn other_macros_and_escaped_statements_are_left_as_written() {
        let out = rewritten(syn::parse_quote!({
            my::vec![1];
            custom!(vec![1]);
            #[es::allow_impure(reason = "r")]
            let v = vec![1];
        }));
        assert!(out.contains("my::vec![1]"), "{out}");
        assert!(out.contains("custom!(vec![1])"), "{out}");
        assert!(out.contains("letv=vec![1]"), "{out}");
        assert!(!out.contains("::std::"), "{out}");
    }
}
