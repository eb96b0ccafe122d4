//! The body checker shared by `#[aggregate]` and `#[es::pure]`: a syntax-tree visitor
//! that reports every refused construct on its own span, and collects a reference to
//! the `#[es::pure]` marker of every call it cannot vouch for by itself.

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Expr, Token};

use super::escape::{check_escape, expr_attrs};
use super::forbidden::{
    ASYNC, Category, FORBIDDEN, FORBIDDEN_MACROS, MacroArgs, PRIMITIVES, PURE_MACROS, PURE_STD_FUNCTIONS, Pattern,
    STATIC, TRUSTED_SELF_METHODS, UNSAFE,
};
use super::symbol::marker_name;
use crate::ctxt::Ctxt;

/// What the checked code may rely on besides the default rules.
#[derive(Default)]
pub struct Options {
    /// Normalised paths from `trust(...)`.
    pub trusted: Vec<Vec<String>>,
    /// The name of the type whose impl is checked: `Cart::helper(..)` is then a call
    /// into the aggregate's own code, like `Self::helper(..)`.
    pub self_type: Option<String>,
}

impl Options {
    pub fn new(trusted: &[syn::Path], self_type: Option<String>) -> Self {
        let trusted = trusted.iter().map(|path| normalise(None, path)).collect();
        Self { trusted, self_type }
    }

    fn is_trusted(&self, path: &[String]) -> bool {
        self.trusted.iter().any(|trusted| {
            let same_last = trusted.last() == path.last();
            let own = |segment: &String| segment == "Self" || Some(segment) == self.self_type.as_ref();
            same_last
                && (trusted.len() == 1
                    || path.ends_with(trusted)
                    || trusted.ends_with(path)
                    || (trusted.len() == 2 && path.len() == 2 && own(&trusted[0]) && own(&path[0])))
        })
    }
}

/// Checks one function body. Every finding goes to `cx`; the result is the marker
/// references to put in front of the body, each carrying the span of its call.
pub fn check_fn(cx: &Ctxt, sig: &syn::Signature, block: &syn::Block, options: &Options) -> Vec<TokenStream> {
    let mut locals = Locals::default();
    for input in &sig.inputs {
        locals.visit_fn_arg(input);
    }
    locals.visit_block(block);
    let mut checker = Checker { cx, options, locals: locals.0, markers: Vec::new() };
    checker.visit_block(block);
    checker.markers
}

/// Puts the marker references in front of a body: resolving them proves that every
/// callee was checked by `#[es::pure]`. Inside the body rather than in a separate item,
/// so that names imported or declared in the body, and `Self`, resolve as in the call.
pub fn insert_markers(block: &mut syn::Block, markers: &[TokenStream]) {
    if markers.is_empty() {
        return;
    }
    let count = markers.len();
    let stmt: syn::Stmt = syn::parse_quote! {
        let _: [::es::__private::PureMarker; #count] = [#(#markers),*];
    };
    block.stmts.insert(0, stmt);
}

/// `::std::time::SystemTime::now` → `std time SystemTime now`; `core`/`alloc` read as
/// `std`; `<T as Trait>::f` reads as `T::f`; generic arguments are dropped.
pub fn normalise(qself: Option<&syn::QSelf>, path: &syn::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = 0;
    if let Some(qself) = qself {
        if let syn::Type::Path(ty) = &*qself.ty {
            out = normalise(ty.qself.as_ref(), &ty.path);
        } else {
            out.push("<type>".to_owned());
        }
        skip = qself.position;
    }
    for segment in path.segments.iter().skip(skip) {
        let name = segment.ident.to_string();
        out.push(name.strip_prefix("r#").map(str::to_owned).unwrap_or(name));
    }
    if let Some(first) = out.first_mut()
        && (first == "core" || first == "alloc")
    {
        "std".clone_into(first);
    }
    out
}

/// Where a path occurs: the rules that may match differ (a local named `now` is fine,
/// a call of `now()` is not).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Call,
    Value,
    Use,
    Method,
}

fn matches(pattern: Pattern, path: &[String], place: Place) -> bool {
    match pattern {
        Pattern::Crate(name) => {
            path.first().is_some_and(|first| first == name) && (path.len() >= 2 || place == Place::Use)
        }
        Pattern::Module(module) => {
            let module: Vec<&str> = module.split("::").collect();
            let full = path.len() >= module.len() && path.iter().zip(&module).all(|(a, b)| a == b);
            // `use std::fs; fs::write(..)`: the module reached through its import.
            let imported = path.len() >= 2 && module.last().is_some_and(|last| path[0] == *last);
            place != Place::Method && (full || imported)
        }
        Pattern::Name(name) => {
            path.last().is_some_and(|last| last == name)
                && match place {
                    Place::Call | Place::Method | Place::Use => true,
                    Place::Value => path.len() >= 2,
                }
        }
        Pattern::Type(name) => match place {
            Place::Use => path.iter().any(|segment| segment == name),
            Place::Call => path[..path.len().saturating_sub(1)].iter().any(|segment| segment == name),
            Place::Value | Place::Method => false,
        },
    }
}

/// How a call that is not refused is vouched for.
enum Callee {
    /// Constructors, associated functions of types, closures in locals, the pure std
    /// functions: allowed by default.
    Allowed,
    /// A free function: its marker lives beside it.
    Free,
    /// A function of the checked type itself (`Self::f`, `Cart::f`).
    Own,
}

struct Checker<'a> {
    cx: &'a Ctxt,
    options: &'a Options,
    locals: BTreeSet<String>,
    markers: Vec<TokenStream>,
}

fn display(path: &[String]) -> String {
    path.join("::")
}

fn is_type_name(segment: &str) -> bool {
    segment.starts_with(|c: char| c.is_ascii_uppercase()) || PRIMITIVES.contains(&segment)
}

impl Checker<'_> {
    /// Reports a finding spanning `tokens`: what it does, why that breaks replay, and
    /// what to do instead.
    fn report<T: ToTokens>(&self, tokens: T, subject: &str, category: Category, why: &str) {
        self.cx.error_spanned_by(tokens, format!("{subject} {}: {why}; {}", category.does(), category.instead()));
    }

    /// Reports `path` if a forbidden entry matches; returns whether one did.
    fn check_forbidden<T: ToTokens>(&self, path: &[String], place: Place, tokens: T) -> bool {
        let Some(rule) = FORBIDDEN.iter().find(|rule| matches(rule.pattern, path, place)) else {
            return false;
        };
        let subject = match (place, rule.pattern) {
            (Place::Method, _) => format!("`.{}()`", display(path)),
            (_, Pattern::Name(name)) if path.len() > 1 => {
                format!("`{}` (`{name}` is refused on any type, aliases included)", display(path))
            }
            (_, Pattern::Type(name)) => format!("`{}` (`{name}` is recognised by its name)", display(path)),
            _ => format!("`{}`", display(path)),
        };
        self.report(tokens, &subject, rule.category, rule.why);
        true
    }

    fn classify(&self, path: &[String]) -> Callee {
        let Some((last, parents)) = path.split_last() else {
            return Callee::Allowed;
        };
        if is_type_name(last) {
            return Callee::Allowed; // `Some(..)`, `Money(..)`, `Self::Variant(..)`
        }
        let pure_std = PURE_STD_FUNCTIONS.iter().any(|entry| {
            let entry: Vec<&str> = entry.split("::").collect();
            let same = |n: usize| path.len() == n && path.iter().zip(&entry[entry.len() - n..]).all(|(a, b)| a == b);
            same(entry.len()) || same(entry.len() - 1) || same(1)
        });
        if pure_std {
            return Callee::Allowed;
        }
        match parents.last() {
            None if self.locals.contains(last) => Callee::Allowed, // a closure in a local
            Some(parent) if parent == "Self" || Some(parent) == self.options.self_type.as_ref() => {
                if TRUSTED_SELF_METHODS.contains(&last.as_str()) {
                    Callee::Allowed
                } else {
                    Callee::Own
                }
            }
            Some(parent) if is_type_name(parent) => Callee::Allowed,
            None | Some(_) => Callee::Free,
        }
    }

    fn check_call_path(&mut self, func: &syn::ExprPath) {
        let path = &func.path;
        let normalised = normalise(func.qself.as_ref(), path);
        if self.check_forbidden(&normalised, Place::Call, func) {
            return;
        }
        if func.qself.is_some() || self.options.is_trusted(&normalised) {
            return;
        }
        let Some(last) = path.segments.last() else { return };
        match self.classify(&normalised) {
            Callee::Allowed => {}
            Callee::Free => {
                let marker = marker_name(&last.ident);
                let leading = &path.leading_colon;
                let parents = path.segments.iter().take(path.segments.len() - 1).map(|segment| &segment.ident);
                self.markers.push(quote!(#leading #(#parents ::)* #marker));
            }
            Callee::Own => {
                let marker = marker_name(&last.ident);
                let span = last.ident.span();
                self.markers.push(quote_spanned!(span=> <Self>::#marker));
            }
        }
    }

    fn check_use(&self, tree: &syn::UseTree, prefix: &mut Vec<String>) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.check_use(&path.tree, prefix);
                prefix.pop();
            }
            syn::UseTree::Name(syn::UseName { ident }) | syn::UseTree::Rename(syn::UseRename { ident, .. }) => {
                prefix.push(ident.to_string());
                self.check_use_path(prefix, ident);
                prefix.pop();
            }
            syn::UseTree::Glob(glob) => self.check_use_path(prefix, glob.star_token),
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.check_use(tree, prefix);
                }
            }
        }
    }

    fn check_use_path<T: ToTokens>(&self, path: &[String], tokens: T) {
        let mut path = path.to_vec();
        if let Some(first) = path.first_mut()
            && (first == "core" || first == "alloc")
        {
            "std".clone_into(first);
        }
        self.check_forbidden(&path, Place::Use, tokens);
    }

    fn check_macro(&mut self, mac: &syn::Macro) {
        let path = normalise(None, &mac.path);
        let Some(name) = path.last() else { return };
        let (path_tokens, bang) = (&mac.path, &mac.bang_token);
        let span = quote!(#path_tokens #bang);
        if let Some((_, category, why)) = FORBIDDEN_MACROS.iter().find(|(forbidden, ..)| name == forbidden) {
            self.report(span, &format!("`{name}!`"), *category, why);
            return;
        }
        let from_std = path.len() == 1 || path[0] == "std";
        let Some((_, args)) = PURE_MACROS.iter().find(|(pure, _)| from_std && name == pure) else {
            self.cx.error_spanned_by(
                span,
                format!(
                    "`{}!` is not a known-pure macro: the checker cannot see a macro's expansion; write the code without the macro, mark the statement `#[es::allow_impure(reason = \"...\")]`, or move it into a function marked `#[es::pure]` that does not use it",
                    display(&path)
                ),
            );
            return;
        };
        let parsed = match args {
            MacroArgs::Exprs => mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated).map(|exprs| {
                for expr in &exprs {
                    self.visit_expr(expr);
                }
            }),
            MacroArgs::Vec => mac.parse_body_with(VecArgs::parse).map(|args| {
                for expr in &args.0 {
                    self.visit_expr(expr);
                }
            }),
            MacroArgs::Matches => mac.parse_body_with(MatchesArgs::parse).map(|args| {
                self.visit_expr(&args.expr);
                if let Some(guard) = &args.guard {
                    self.visit_expr(guard);
                }
            }),
            MacroArgs::Opaque => Ok(()),
        };
        if let Err(error) = parsed {
            self.cx.error_at(
                error.span(),
                format!("the checker could not read the arguments of `{name}!` ({error}), so it cannot vouch for them"),
            );
        }
    }
}

/// `vec![a, b]` or `vec![x; n]`.
struct VecArgs(Vec<Expr>);

impl Parse for VecArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.is_empty() {
            return Ok(Self(Vec::new()));
        }
        let first: Expr = input.parse()?;
        if input.peek(Token![;]) {
            input.parse::<Token![;]>()?;
            let count: Expr = input.parse()?;
            return Ok(Self(vec![first, count]));
        }
        let mut exprs = vec![first];
        while input.parse::<Option<Token![,]>>()?.is_some() && !input.is_empty() {
            exprs.push(input.parse()?);
        }
        Ok(Self(exprs))
    }
}

/// `matches!(expr, pattern if guard)`.
struct MatchesArgs {
    expr: Expr,
    guard: Option<Expr>,
}

impl Parse for MatchesArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let expr = input.parse()?;
        input.parse::<Token![,]>()?;
        syn::Pat::parse_multi_with_leading_vert(input)?;
        let guard = if input.parse::<Option<Token![if]>>()?.is_some() { Some(input.parse()?) } else { None };
        input.parse::<Option<Token![,]>>()?;
        Ok(Self { expr, guard })
    }
}

impl<'ast> Visit<'ast> for Checker<'_> {
    fn visit_expr(&mut self, expr: &'ast Expr) {
        if check_escape(self.cx, expr_attrs(expr)) {
            return;
        }
        match expr {
            Expr::Unsafe(block) => self.report(block.unsafe_token, "an `unsafe` block", Category::Unsafe, UNSAFE),
            Expr::Await(expr) => {
                let (dot, token) = (&expr.dot_token, &expr.await_token);
                self.report(quote!(#dot #token), "`.await`", Category::Async, ASYNC);
            }
            Expr::Async(block) => self.report(block.async_token, "an `async` block", Category::Async, ASYNC),
            Expr::Closure(closure) => {
                if let Some(token) = &closure.asyncness {
                    self.report(token, "an `async` closure", Category::Async, ASYNC);
                }
            }
            _ => {}
        }
        visit::visit_expr(self, expr);
    }

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        if let Expr::Path(func) = &*call.func
            && expr_attrs(&call.func).is_empty()
        {
            self.check_call_path(func);
        } else {
            self.visit_expr(&call.func);
        }
        for arg in &call.args {
            self.visit_expr(arg);
        }
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        // The receiver first, so that findings are reported in source order.
        self.visit_expr(&call.receiver);
        let name = call.method.to_string();
        let forbidden = self.check_forbidden(std::slice::from_ref(&name), Place::Method, &call.method);
        let on_self = matches!(&*call.receiver, Expr::Path(path) if path.path.is_ident("self"));
        let trusted = TRUSTED_SELF_METHODS.contains(&name.as_str())
            || self.options.is_trusted(&["Self".to_owned(), name.clone()]);
        if on_self && !forbidden && !trusted {
            let marker = marker_name(&call.method);
            let span = call.method.span();
            self.markers.push(quote_spanned!(span=> <Self>::#marker));
        }
        for arg in &call.args {
            self.visit_expr(arg);
        }
    }

    fn visit_expr_path(&mut self, path: &'ast syn::ExprPath) {
        let normalised = normalise(path.qself.as_ref(), &path.path);
        self.check_forbidden(&normalised, Place::Value, path);
    }

    fn visit_expr_macro(&mut self, mac: &'ast syn::ExprMacro) {
        self.check_macro(&mac.mac);
    }

    fn visit_stmt_macro(&mut self, mac: &'ast syn::StmtMacro) {
        if !check_escape(self.cx, &mac.attrs) {
            self.check_macro(&mac.mac);
        }
    }

    fn visit_local(&mut self, local: &'ast syn::Local) {
        if !check_escape(self.cx, &local.attrs) {
            visit::visit_local(self, local);
        }
    }

    fn visit_item(&mut self, item: &'ast syn::Item) {
        match item {
            syn::Item::Static(item) if !check_escape(self.cx, &item.attrs) => {
                self.report(item.static_token, "a `static` item", Category::Static, STATIC);
            }
            syn::Item::Use(item) if !check_escape(self.cx, &item.attrs) => self.check_use(&item.tree, &mut Vec::new()),
            syn::Item::Macro(item) if !check_escape(self.cx, &item.attrs) => self.check_macro(&item.mac),
            // Nested functions, impls and modules are not part of this body: a call into
            // them needs their own `#[es::pure]`.
            _ => {}
        }
    }

    // Patterns and types hold no calls worth checking; skipping them keeps a local
    // named `now` from ever looking like a path.
    fn visit_pat(&mut self, _: &'ast syn::Pat) {}
    fn visit_type(&mut self, _: &'ast syn::Type) {}
}

/// Names bound anywhere in a body: a call of one of them calls a closure or function
/// value held in a local, whose body (if written here) is checked in place.
#[derive(Default)]
struct Locals(BTreeSet<String>);

impl<'ast> Visit<'ast> for Locals {
    fn visit_pat_ident(&mut self, pat: &'ast syn::PatIdent) {
        self.0.insert(pat.ident.to_string());
        visit::visit_pat_ident(self, pat);
    }
    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

/// Parses the paths of `trust(...)`.
pub fn parse_paths(tokens: TokenStream) -> syn::Result<Vec<syn::Path>> {
    let paths = Punctuated::<syn::Path, Token![,]>::parse_terminated.parse2(tokens)?;
    Ok(paths.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(block: &syn::Block) -> (usize, usize) {
        let cx = Ctxt::new();
        let sig: syn::Signature = syn::parse_quote!(fn apply(&mut self, event: &Event));
        let markers =
            check_fn(&cx, &sig, block, &Options::new(&[syn::parse_quote!(other::trusted)], Some("Cart".into())));
        let errors = cx.check().err().map_or(0, |error| error.into_iter().count());
        (errors, markers.len())
    }

    #[test]
    fn three_distinct_impurities_give_three_findings() {
        let body = syn::parse_quote!({
            let at = std::time::SystemTime::now();
            let n: u64 = rand::random();
            println!("{at:?} {n}");
        });
        assert_eq!(findings(&body), (3, 0));
    }

    #[test]
    fn paths_are_normalised() {
        let body = syn::parse_quote!({
            ::std::time::SystemTime::now();
            core::time::Instant::now();
            <SystemTime>::now();
            <Utc as TimeZone>::now();
            Instant::now();
            Clock::now();
            fs::read_to_string("x");
            env::var("X");
        });
        assert_eq!(findings(&body).0, 8);
    }

    #[test]
    fn closures_blocks_arms_and_macro_arguments_are_searched() {
        let body = syn::parse_quote!({
            let f = |x: u64| x + Uuid::new_v4().as_u128() as u64;
            {
                let Some(x) = event.x else {
                    std::thread::sleep(d);
                    return;
                };
            }
            match event {
                E::A => self.at = Utc::now(),
                _ => {}
            }
            let s = format!("{}", SystemTime::now().elapsed().is_ok());
            debug_assert!(matches!(self.x, Some(_) if Instant::now().elapsed().as_secs() > 0));
        });
        // new_v4, sleep, Utc::now, SystemTime::now, .elapsed(), Instant::now, .elapsed()
        assert_eq!(findings(&body).0, 7);
    }

    #[test]
    fn language_constructs_are_refused() {
        let body = syn::parse_quote!({
            unsafe { x() };
            let y = fut.await;
            let z = async { 1 };
            static COUNT: u64 = 0;
            thread_local!(static X: u8 = 0);
            use std::fs::File;
            my_macro!(x);
        });
        assert_eq!(findings(&body).0, 7);
    }

    #[test]
    fn legitimate_bodies_have_no_findings() {
        let body = syn::parse_quote!({
            use std::fmt::Write as _;
            let now = event.at;
            let time = event.time;
            let env = &self.env;
            let fs = self.fs.len();
            self.now = now;
            self.items.entry(event.key.clone()).or_default().push(event.amount.saturating_add(1));
            let total: u64 = self.items.values().flatten().map(|x| x * 2).filter(|x| *x > 0).sum();
            self.total = std::cmp::max(total, u64::saturating_sub(self.total, 1));
            let old = std::mem::take(&mut self.items);
            let _ = core::mem::replace(&mut self.count, max(1, min(2, 3)));
            let mut out = String::new();
            write!(out, "{}", total).unwrap();
            writeln!(&mut out, "{time:?}").unwrap();
            let v = vec![Some(1), None, Some(Money::new(3))];
            let w = vec![0u8; 4];
            debug_assert!(matches!(event, Event::Opened { .. } | Event::Closed));
            assert_eq!(self.total, total, "total {}", format!("{}", total));
            *self = Self::default();
            self.state = State::Open(Default::default());
            let map = BTreeMap::new();
            let cloned = event.clone();
            let add = |a: u64, b: u64| a + b;
            add(1, 2);
            other::trusted(3);
            if self.x.is_empty() {
                unreachable!("never")
            }
        });
        assert_eq!(findings(&body), (0, 0));
    }

    #[test]
    fn unvouched_calls_need_markers() {
        let body = syn::parse_quote!({
            helper(1);
            crate::pricing::total(&self.items);
            self.recompute();
            Self::fold_one(self, event);
            Cart::fold_two(self, event);
            self.items.push(1);
        });
        assert_eq!(findings(&body), (0, 5));
    }

    #[test]
    fn escape_hatch_skips_one_statement_and_needs_a_reason() {
        let with_reason = syn::parse_quote!({
            #[es::allow_impure(reason = "metrics only, never read back")]
            println!("applied");
        });
        assert_eq!(findings(&with_reason), (0, 0));
        let without = syn::parse_quote!({
            #[allow_impure]
            println!("applied");
            #[allow_impure(reason = "")]
            let t = SystemTime::now();
        });
        assert_eq!(findings(&without), (2, 0));
    }
}
