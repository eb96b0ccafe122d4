//! The body checker shared by `#[aggregate]` and `#[es::pure]`: a syntax-tree visitor
//! that reports every refused construct on its own span, and collects a *proof* for
//! every call it cannot vouch for by itself (a reference to the `#[es::pure]` marker of
//! the callee, or evidence that a name is std's pure function).
//!
//! Everything `apply` can call is a call here: a path in call position in any spelling
//! (`f(..)`, `m::f(..)`, `Type::f(..)`, `<Type>::f(..)`, `<T as Trait>::f(..)`), a
//! method on `self` through any reborrow or local alias (`(*self).f()`,
//! `let s = &mut *self; s.f()`), and a function used as a value (`.map(Self::f)`,
//! `let g = f;`). Locals are tracked with their scopes, so a closure bound in one arm
//! does not vouch for a function of the same name called elsewhere.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Expr, Token};

use super::escape::{check_escape, expr_attrs};
use super::forbidden::{
    ASYNC, Category, FORBIDDEN, FORBIDDEN_MACROS, INTERIOR_MUTABILITY_GETTERS, INTERIOR_MUTABILITY_METHODS, MacroArgs,
    ORDER, PRIMITIVES, PURE_MACROS, PURE_STD_FUNCTIONS, PURE_STD_TYPES, PURE_TRAIT_FUNCTIONS, Pattern, RECEIVER_MACROS,
    STATIC, TRUSTED_SELF_METHODS, TRUSTED_TYPES, UNORDERED_ITERATION, UNORDERED_TYPES, UNSAFE,
};
use super::symbol::{FREE_MARKER, marker_name};
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

    fn is_own(&self, segment: &str) -> bool {
        segment == "Self" || Some(segment) == self.self_type.as_deref()
    }

    fn is_trusted(&self, path: &[String]) -> bool {
        self.trusted.iter().any(|trusted| {
            let same_last = trusted.last() == path.last();
            same_last
                && (trusted.len() == 1
                    || path.ends_with(trusted)
                    || trusted.ends_with(path)
                    || (trusted.len() == 2 && path.len() == 2 && self.is_own(&trusted[0]) && self.is_own(&path[0])))
        })
    }
}

/// Checks one function body. Every finding goes to `cx`; the result is the proofs to
/// put in front of the body, each carrying the span of its call.
pub fn check_fn(cx: &Ctxt, sig: &syn::Signature, block: &syn::Block, options: &Options) -> Vec<TokenStream> {
    let mut checker = Checker { cx, options, scopes: vec![Vec::new()], proofs: Vec::new() };
    for input in &sig.inputs {
        if let syn::FnArg::Typed(param) = input {
            let pat = syn::Pat::Type(syn::PatType {
                attrs: Vec::new(),
                pat: param.pat.clone(),
                colon_token: param.colon_token,
                ty: param.ty.clone(),
            });
            checker.bind_typed(&pat, None);
        }
    }
    checker.visit_block(block);
    checker.proofs
}

/// Puts the proofs in front of a body: compiling them proves that every callee was
/// checked by `#[es::pure]` (or is std's). Inside the body rather than in a separate
/// item, so that names imported or declared in the body, and `Self`, resolve as in the
/// call.
pub fn insert_markers(block: &mut syn::Block, proofs: &[TokenStream]) {
    if proofs.is_empty() {
        return;
    }
    let stmt: syn::Stmt = syn::parse_quote! {
        { #(#proofs)* }
    };
    block.stmts.insert(0, stmt);
}

/// A reference to the marker `#[es::pure]` left for `name` as an associated constant of
/// `ty` (a marked method, or the type-namespace twin of a marked free function). When
/// it is missing, a local fallback trait supplies the constant under a bound that
/// cannot hold, so rustc reports the fix in words instead of "not found".
fn marker_proof(ty: &TokenStream, name: &syn::Ident, marker: &syn::Ident) -> TokenStream {
    let shown = name.to_string();
    let shown = shown.strip_prefix("r#").unwrap_or(&shown);
    let message = format!("`{shown}` is not checked by `#[es::pure]`, so a handler may not call it");
    let label = format!("mark `{shown}` with `#[es::pure]` or name it in `#[aggregate(trust(..))]`");
    let note = "a handler may only call functions whose bodies were checked: put `#[es::pure]` on the function, or on its `impl` block";
    let span = name.span();
    let reference = quote_spanned!(span=> let _ = <#ty>::#marker;);
    quote! {
        {
            #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
            #[allow(non_camel_case_types)]
            trait checked_by_es_pure {}
            #[allow(non_camel_case_types)]
            trait es_pure_marker {
                const #marker: ::es::__private::PureMarker;
            }
            impl<__EsT: ?::core::marker::Sized + checked_by_es_pure> es_pure_marker for __EsT {
                const #marker: ::es::__private::PureMarker = ::es::__private::PureMarker;
            }
            #reference
        }
    }
}

/// Evidence that `local` (an imported `take`, `mem::take`) names std's function `std`:
/// a function item only has the same type as itself. The generic arguments pin std's
/// side only, so that the local name's are inferred from it.
fn same_fn_proof(local: &TokenStream, std: &str, generics: &str, span: Span) -> TokenStream {
    let std: TokenStream = format!("::{std}{generics}").parse().expect("table entries are paths");
    let std = respan(std, span);
    quote_spanned! {span=>
        {
            fn names_the_pure_std_function<F>(_: F, _: F) {}
            names_the_pure_std_function(#local, #std);
        }
    }
}

fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut inner = proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = proc_macro2::TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// `::std::time::SystemTime::now` → `std time SystemTime now`; `core`/`alloc` read as
/// `std`; `<T as Trait>::f` reads as `T::f`; generic arguments are dropped.
pub fn normalise(qself: Option<&syn::QSelf>, path: &syn::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = 0;
    if let Some(qself) = qself {
        out = match strip_references(&qself.ty) {
            syn::Type::Path(ty) => normalise(ty.qself.as_ref(), &ty.path),
            _ => vec!["<type>".to_owned()],
        };
        skip = qself.position;
    }
    for segment in path.segments.iter().skip(skip) {
        out.push(ident_string(&segment.ident));
    }
    if let Some(first) = out.first_mut()
        && (first == "core" || first == "alloc")
    {
        "std".clone_into(first);
    }
    out
}

fn ident_string(ident: &syn::Ident) -> String {
    let name = ident.to_string();
    name.strip_prefix("r#").map(str::to_owned).unwrap_or(name)
}

/// `&T`, `&mut T`, `(T)` → `T`.
fn strip_references(ty: &syn::Type) -> &syn::Type {
    match ty {
        syn::Type::Reference(reference) => strip_references(&reference.elem),
        syn::Type::Paren(paren) => strip_references(&paren.elem),
        syn::Type::Group(group) => strip_references(&group.elem),
        other => other,
    }
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

/// What a name bound in a body holds.
#[derive(Clone)]
enum Binding {
    /// A value of a type the check does not know: calling it calls a closure or a
    /// function value, whose origin was checked where it was bound; its methods are
    /// not checked.
    Local,
    /// A value of a known user type: `self` (`Self`), `self` under another name
    /// (`let s = &mut *self;`), or a binding whose type is written
    /// (`cart: &mut Cart`, `|s: &mut Self|`, `let c = Cart { .. }`). Its methods need
    /// the type's markers, like `self`'s.
    Of(TokenStream),
    /// A `HashMap` or `HashSet` declared in the body: iterating it is refused.
    Unordered(String),
}

struct Checker<'a> {
    cx: &'a Ctxt,
    options: &'a Options,
    /// Innermost last: blocks, match arms, closures, `if let`/`while let`, `for`.
    scopes: Vec<Vec<(String, Binding)>>,
    proofs: Vec<TokenStream>,
}

fn display(path: &[String]) -> String {
    path.join("::")
}

fn is_type_name(segment: &str) -> bool {
    segment.starts_with(|c: char| c.is_ascii_uppercase()) || PRIMITIVES.contains(&segment)
}

/// `COUNTER`, `CACHE_2`: the spelling of statics and constants.
fn is_screaming(segment: &str) -> bool {
    segment.chars().any(|c| c.is_ascii_uppercase())
        && segment.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// `(x)`, `&x`, `&mut x`, `*x` → `x`: the same place, reborrowed.
fn strip_place(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(inner) => strip_place(&inner.expr),
        Expr::Group(inner) => strip_place(&inner.expr),
        Expr::Reference(inner) => strip_place(&inner.expr),
        Expr::Unary(syn::ExprUnary { op: syn::UnOp::Deref(_), expr, .. }) => strip_place(expr),
        other => other,
    }
}

/// Names a pattern binds.
fn bound_names(pat: &syn::Pat) -> Vec<String> {
    #[derive(Default)]
    struct Names(Vec<String>);
    impl<'ast> Visit<'ast> for Names {
        fn visit_pat_ident(&mut self, pat: &'ast syn::PatIdent) {
            self.0.push(ident_string(&pat.ident));
            visit::visit_pat_ident(self, pat);
        }
        fn visit_expr(&mut self, _: &'ast Expr) {}
        fn visit_type(&mut self, _: &'ast syn::Type) {}
    }
    let mut names = Names::default();
    names.visit_pat(pat);
    names.0
}

/// How a called or referenced function is vouched for.
enum Callee {
    /// Constructors, locals, std's pure functions and types, trusted paths.
    Allowed,
    /// A name that must be std's pure function (`take` imported from `std::mem`).
    Std(&'static str, &'static str),
    /// A free function: its marker hangs on the type-namespace twin `#[es::pure]`
    /// leaves under the function's own name.
    Free,
    /// An associated function of `Self` or of another type: its marker is an
    /// associated constant of the type.
    Associated(TokenStream),
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

    fn push(&mut self) {
        self.scopes.push(Vec::new());
    }

    fn pop(&mut self) {
        self.scopes.pop();
    }

    fn bind(&mut self, pat: &syn::Pat, binding: &Binding) {
        let names = bound_names(pat);
        let scope = self.scopes.last_mut().expect("a scope is always open");
        scope.extend(names.into_iter().map(|name| (name, binding.clone())));
    }

    /// Binds a parameter or a `let`: typed by its annotation or its initialiser when
    /// either names a user type.
    fn bind_typed(&mut self, pat: &syn::Pat, init: Option<&Expr>) {
        let unordered = match pat {
            syn::Pat::Type(typed) if matches!(*typed.pat, syn::Pat::Ident(_)) => unordered_type(&typed.ty),
            syn::Pat::Ident(_) => init.and_then(unordered_init),
            _ => None,
        };
        if let Some(name) = unordered {
            self.bind(pat, &Binding::Unordered(name));
            return;
        }
        let binding = match pat {
            syn::Pat::Type(typed) if matches!(*typed.pat, syn::Pat::Ident(_)) => self.user_type(&typed.ty),
            syn::Pat::Ident(_) => init.and_then(|init| self.type_of(init)),
            _ => None,
        };
        self.bind(pat, &binding.map_or(Binding::Local, Binding::Of));
    }

    fn binding(&self, name: &str) -> Option<&Binding> {
        self.scopes.iter().rev().flat_map(|scope| scope.iter().rev()).find(|(bound, _)| bound == name).map(|(_, b)| b)
    }

    /// `Self`, `&mut Cart`, `Wrapper<u8>`: a user type whose methods carry markers; not
    /// std's types, `es`'s `Recorded`, nor types the check cannot name (`impl Trait`).
    fn user_type(&self, ty: &syn::Type) -> Option<TokenStream> {
        let syn::Type::Path(path) = strip_references(ty) else { return None };
        let last = path.path.segments.last()?;
        let name = ident_string(&last.ident);
        if path.qself.is_some()
            || !is_type_name(&name)
            || PURE_STD_TYPES.contains(&name.as_str())
            || TRUSTED_TYPES.contains(&name.as_str())
        {
            return None;
        }
        if path.path.segments.len() == 1 && self.options.is_own(&name) && last.arguments.is_empty() {
            return Some(quote!(Self));
        }
        Some(path.to_token_stream())
    }

    /// The user type of an expression, where the syntax says it: `self` through any
    /// reborrow, deref, parentheses or alias, a binding typed with it, a struct
    /// literal `Cart { .. }`.
    fn type_of(&self, expr: &Expr) -> Option<TokenStream> {
        match strip_place(expr) {
            Expr::Path(path) if path.qself.is_none() => {
                let ident = path.path.get_ident()?;
                if ident == "self" {
                    return Some(quote!(Self));
                }
                match self.binding(&ident_string(ident))? {
                    Binding::Of(ty) => Some(ty.clone()),
                    Binding::Local | Binding::Unordered(_) => None,
                }
            }
            Expr::Struct(literal) if literal.qself.is_none() => {
                let ty = syn::Type::Path(syn::TypePath { qself: None, path: literal.path.clone() });
                self.user_type(&ty)
            }
            _ => None,
        }
    }

    /// The type an associated function hangs on, as the proof must spell it: `Self`
    /// for the checked type, the qualified self type of `<T as Trait>::f`, or the path
    /// before the function with its generic arguments (`Wrapper::<u8>`).
    fn owner_type(&self, func: &syn::ExprPath, normalised: &[String]) -> Option<TokenStream> {
        if let Some(qself) = &func.qself {
            let ty = strip_references(&qself.ty);
            let own = matches!(ty, syn::Type::Path(path) if path.qself.is_none()
                && path.path.segments.len() == 1 && self.options.is_own(&ident_string(&path.path.segments[0].ident)));
            return Some(if own { quote!(Self) } else { ty.to_token_stream() });
        }
        let segments = &func.path.segments;
        if segments.len() < 2 {
            return None;
        }
        let parent = &normalised[normalised.len() - 2];
        if !is_type_name(parent) {
            return None;
        }
        if segments.len() == 2 && self.options.is_own(parent) {
            return Some(quote!(Self));
        }
        let leading = &func.path.leading_colon;
        let owner = segments.iter().take(segments.len() - 1);
        Some(quote!(#leading #(#owner)::*))
    }

    fn classify(&self, func: &syn::ExprPath, normalised: &[String]) -> Callee {
        let Some((last, parents)) = normalised.split_last() else {
            return Callee::Allowed;
        };
        if is_type_name(last) || self.options.is_trusted(normalised) {
            return Callee::Allowed; // `Some(..)`, `Money(..)`, `Self::Variant(..)`, `trust(..)`
        }
        if let Some(owner) = self.owner_type(func, normalised) {
            // `<T as Trait>::f` belongs to the trait; `Type::f` to the type.
            let parent = match &func.qself {
                Some(qself) if qself.position > 0 => ident_string(&func.path.segments[qself.position - 1].ident),
                _ => parents.last().cloned().unwrap_or_default(),
            };
            let own = owner.to_string() == "Self";
            // `<[T]>::len`, `<(A, B)>::default`: inherent functions of slices, arrays,
            // tuples, which are std's.
            let std_shape = func
                .qself
                .as_ref()
                .is_some_and(|qself| qself.position == 0 && !matches!(strip_references(&qself.ty), syn::Type::Path(_)));
            let allowed = (own && TRUSTED_SELF_METHODS.contains(&last.as_str()))
                || PURE_STD_TYPES.contains(&parent.as_str())
                || PURE_TRAIT_FUNCTIONS.contains(&last.as_str())
                || std_shape;
            return if allowed { Callee::Allowed } else { Callee::Associated(owner) };
        }
        if parents.is_empty() && self.binding(last).is_some() {
            return Callee::Allowed; // a closure or function value held in a local
        }
        let std = PURE_STD_FUNCTIONS.iter().find(|(entry, _)| {
            let entry: Vec<&str> = entry.split("::").collect();
            let tail = |n: usize| {
                normalised.len() == n && normalised.iter().zip(&entry[entry.len() - n..]).all(|(a, b)| a == b)
            };
            tail(entry.len()) || tail(entry.len() - 1) || tail(1)
        });
        match std {
            // In full from std: std's (a local module named `std` is not guarded against).
            Some(_) if normalised.len() >= 3 && normalised[0] == "std" => Callee::Allowed,
            Some((entry, generics)) => Callee::Std(entry, generics),
            None => Callee::Free,
        }
    }

    /// A path called, or used as a function value: refused, allowed, or proved.
    fn check_callee(&mut self, func: &syn::ExprPath) {
        let normalised = normalise(func.qself.as_ref(), &func.path);
        if self.check_forbidden(&normalised, Place::Call, func) {
            return;
        }
        let Some(last) = func.path.segments.last() else { return };
        match self.classify(func, &normalised) {
            Callee::Allowed => {}
            Callee::Std(std, generics) => {
                let leading = &func.path.leading_colon;
                let idents = func.path.segments.iter().map(|segment| &segment.ident);
                let local = quote!(#leading #(#idents)::*);
                let span = last.ident.span();
                self.proofs.push(same_fn_proof(&local, std, generics, span));
            }
            Callee::Free => {
                // The twin is a type named like the function: the path without
                // generic arguments (`fee::<u8>` → `fee`).
                let leading = &func.path.leading_colon;
                let idents = func.path.segments.iter().map(|segment| &segment.ident);
                let twin = quote!(#leading #(#idents)::*);
                let marker = syn::Ident::new(FREE_MARKER, last.ident.span());
                self.proofs.push(marker_proof(&twin, &last.ident, &marker));
            }
            Callee::Associated(owner) => self.proofs.push(marker_proof(&owner, &last.ident, &marker_name(&last.ident))),
        }
    }

    /// A path used as a value: a function item named there (`.map(helper)`,
    /// `.map(Self::touch)`, `let g = persist;`) needs the same proof as a call of it.
    fn check_value_path(&mut self, path: &syn::ExprPath) {
        let normalised = normalise(path.qself.as_ref(), &path.path);
        if self.check_forbidden(&normalised, Place::Value, path) {
            return;
        }
        let Some(last) = normalised.last() else { return };
        if is_type_name(last) || is_screaming(last) || last == "self" {
            return; // constructors, constants, statics (see methods), `self`
        }
        if normalised.len() == 1 && self.binding(last).is_some() {
            return;
        }
        self.check_callee(path);
    }

    /// Iterating a `HashMap` or `HashSet` declared in the body, by a method or a `for`
    /// loop (`method` is `None`).
    fn check_unordered(&self, receiver: &Expr, method: Option<&syn::Ident>) {
        let Expr::Path(path) = strip_place(receiver) else { return };
        let Some(ident) = path.path.get_ident() else { return };
        let Some(Binding::Unordered(kind)) = self.binding(&ident_string(ident)) else { return };
        let iterates = method.is_none_or(|method| UNORDERED_ITERATION.contains(&ident_string(method).as_str()));
        if !iterates {
            return;
        }
        let subject = match method {
            Some(method) => format!("`{ident}.{method}()` on a `{kind}`"),
            None => format!("a `for` loop over the `{kind}` `{ident}`"),
        };
        match method {
            Some(method) => self.report(quote!(#receiver . #method), &subject, Category::Order, ORDER),
            None => self.report(receiver, &subject, Category::Order, ORDER),
        }
    }

    /// `COUNTER.fetch_add(1, ..)`, `CACHE.with(..)`: state that outlives the fold.
    fn check_static_method(&self, call: &syn::ExprMethodCall) -> bool {
        let Expr::Path(receiver) = strip_place(&call.receiver) else { return false };
        let Some(last) = receiver.path.segments.last() else { return false };
        let name = ident_string(&last.ident);
        let method = ident_string(&call.method);
        let refused = INTERIOR_MUTABILITY_METHODS.contains(&method.as_str())
            || (call.args.is_empty() && INTERIOR_MUTABILITY_GETTERS.contains(&method.as_str()));
        if !is_screaming(&name) || !refused || (receiver.path.segments.len() == 1 && self.binding(&name).is_some()) {
            return false;
        }
        let (receiver, dot, method) = (&call.receiver, &call.dot_token, &call.method);
        self.report(
            quote!(#receiver #dot #method),
            &format!("`{name}.{method}()` (on a `static` or `thread_local!`, by its SCREAMING_CASE name)"),
            Category::Static,
            STATIC,
        );
        true
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
        let Some((_, args)) = PURE_MACROS.iter().find(|(pure, _)| is_std_macro(&path) && name == pure) else {
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
                let receiver = RECEIVER_MACROS.iter().find(|(receiving, _)| name == receiving);
                if let (Some((_, method)), Some(first)) = (receiver, exprs.first())
                    && let Some(ty) = self.type_of(first)
                {
                    let method =
                        syn::Ident::new(method, mac.path.segments.last().map_or(Span::call_site(), |s| s.ident.span()));
                    self.proofs.push(marker_proof(&ty, &method, &marker_name(&method)));
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
                    self.push();
                    self.bind(&args.pat, &Binding::Local);
                    self.visit_expr(guard);
                    self.pop();
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

/// `vec!` or `std::vec!` (after normalising `core`/`alloc`), not `my::vec!`.
fn is_std_macro(path: &[String]) -> bool {
    path.len() == 1 || (path.len() == 2 && path[0] == "std")
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
    pat: syn::Pat,
    guard: Option<Expr>,
}

impl Parse for MatchesArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let expr = input.parse()?;
        input.parse::<Token![,]>()?;
        let pat = syn::Pat::parse_multi_with_leading_vert(input)?;
        let guard = if input.parse::<Option<Token![if]>>()?.is_some() { Some(input.parse()?) } else { None };
        input.parse::<Option<Token![,]>>()?;
        Ok(Self { expr, pat, guard })
    }
}

impl<'ast> Visit<'ast> for Checker<'_> {
    fn visit_block(&mut self, block: &'ast syn::Block) {
        self.push();
        // Constants declared in the block are values, visible throughout it.
        for stmt in &block.stmts {
            if let syn::Stmt::Item(syn::Item::Const(item)) = stmt {
                let name = ident_string(&item.ident);
                self.scopes.last_mut().expect("a scope is open").push((name, Binding::Local));
            }
        }
        visit::visit_block(self, block);
        self.pop();
    }

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
                self.push();
                for input in &closure.inputs {
                    self.bind_typed(input, None);
                }
                self.visit_expr(&closure.body);
                self.pop();
                return;
            }
            Expr::Match(expr) => {
                self.visit_expr(&expr.expr);
                for arm in &expr.arms {
                    self.push();
                    self.bind(&arm.pat, &Binding::Local);
                    if let Some((_, guard)) = &arm.guard {
                        self.visit_expr(guard);
                    }
                    self.visit_expr(&arm.body);
                    self.pop();
                }
                return;
            }
            Expr::If(expr) => {
                // `if let` bindings (and let chains) hold in the then-branch only.
                self.push();
                self.visit_expr(&expr.cond);
                self.visit_block(&expr.then_branch);
                self.pop();
                if let Some((_, other)) = &expr.else_branch {
                    self.visit_expr(other);
                }
                return;
            }
            Expr::While(expr) => {
                self.push();
                self.visit_expr(&expr.cond);
                self.visit_block(&expr.body);
                self.pop();
                return;
            }
            Expr::ForLoop(expr) => {
                self.check_unordered(&expr.expr, None);
                self.visit_expr(&expr.expr);
                self.push();
                self.bind(&expr.pat, &Binding::Local);
                self.visit_block(&expr.body);
                self.pop();
                return;
            }
            _ => {}
        }
        visit::visit_expr(self, expr);
    }

    fn visit_expr_let(&mut self, expr: &'ast syn::ExprLet) {
        self.visit_expr(&expr.expr);
        self.bind(&expr.pat, &Binding::Local);
    }

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        if let Expr::Path(func) = &*call.func
            && expr_attrs(&call.func).is_empty()
        {
            let single = func.qself.is_none() && func.path.segments.len() == 1;
            let local = single && self.binding(&ident_string(&func.path.segments[0].ident)).is_some();
            if !local {
                self.check_callee(func);
            }
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
        let name = ident_string(&call.method);
        let forbidden = self.check_forbidden(std::slice::from_ref(&name), Place::Method, &call.method)
            || self.check_static_method(call);
        self.check_unordered(&call.receiver, Some(&call.method));
        if let Some(ty) = self.type_of(&call.receiver) {
            let own = ty.to_string() == "Self";
            let owner = if own { "Self".to_owned() } else { type_name(&ty) };
            let trusted = (own && TRUSTED_SELF_METHODS.contains(&name.as_str()))
                || PURE_TRAIT_FUNCTIONS.contains(&name.as_str())
                || self.options.is_trusted(&[owner, name.clone()]);
            if !forbidden && !trusted {
                self.proofs.push(marker_proof(&ty, &call.method, &marker_name(&call.method)));
            }
        }
        for arg in &call.args {
            self.visit_expr(arg);
        }
    }

    fn visit_expr_path(&mut self, path: &'ast syn::ExprPath) {
        self.check_value_path(path);
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
        if check_escape(self.cx, &local.attrs) {
            // Still a binding: later code may use the name.
            self.bind(&local.pat, &Binding::Local);
            return;
        }
        if let Some(init) = &local.init {
            self.visit_expr(&init.expr);
            if let Some((_, diverge)) = &init.diverge {
                self.visit_expr(diverge);
            }
        }
        let init = local.init.as_ref().filter(|init| init.diverge.is_none()).map(|init| &*init.expr);
        self.bind_typed(&local.pat, init);
    }

    fn visit_item(&mut self, item: &'ast syn::Item) {
        match item {
            syn::Item::Static(item) if !check_escape(self.cx, &item.attrs) => {
                self.report(item.static_token, "a `static` item", Category::Static, STATIC);
            }
            syn::Item::Use(item) if !check_escape(self.cx, &item.attrs) => self.check_use(&item.tree, &mut Vec::new()),
            syn::Item::Macro(item) if !check_escape(self.cx, &item.attrs) => self.check_macro(&item.mac),
            syn::Item::Const(item) if !check_escape(self.cx, &item.attrs) => self.visit_expr(&item.expr),
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

/// `HashMap<K, V>`, `&mut HashSet<T>` → its name.
fn unordered_type(ty: &syn::Type) -> Option<String> {
    let syn::Type::Path(path) = strip_references(ty) else { return None };
    let name = ident_string(&path.path.segments.last()?.ident);
    UNORDERED_TYPES.contains(&name.as_str()).then_some(name)
}

/// `HashMap::new()`, `HashSet::with_capacity(n)`, `iter.collect::<HashMap<_, _>>()`.
fn unordered_init(init: &Expr) -> Option<String> {
    match init {
        Expr::Call(call) => {
            let Expr::Path(func) = &*call.func else { return None };
            let segments = &func.path.segments;
            let owner = segments.iter().rev().nth(1)?;
            let name = ident_string(&owner.ident);
            UNORDERED_TYPES.contains(&name.as_str()).then_some(name)
        }
        Expr::MethodCall(call) if call.method == "collect" => {
            let turbofish = call.turbofish.as_ref()?;
            match turbofish.args.first()? {
                syn::GenericArgument::Type(ty) => unordered_type(ty),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `crate::Cart<T>` → `Cart`: the name `trust(Cart::f)` spells.
fn type_name(ty: &TokenStream) -> String {
    syn::parse2::<syn::Path>(ty.clone())
        .ok()
        .and_then(|path| path.segments.last().map(|last| ident_string(&last.ident)))
        .unwrap_or_default()
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
            let _ = core::mem::replace(&mut self.count, std::cmp::max(1, std::cmp::min(2, 3)));
            let mut out = String::new();
            write!(out, "{}", total).unwrap();
            writeln!(&mut out, "{time:?}").unwrap();
            let v = vec![Some(1), None, Some(Money(3))];
            let s = String::from("x") + &String::with_capacity(2);
            let n = u64::checked_add(1, 2).unwrap_or_default() + <u64 as Default>::default();
            let m: HashMap<u8, u8> = HashMap::new();
            let t: u64 = Iterator::sum(self.items.iter().copied());
            let c = Money::from(3) + Money::default() + From::from(4);
            let d = self.items.iter().map(u64::from).map(Option::Some).map(Clone::clone);
            let e = TABLE.get(1).copied().unwrap_or(NAME.len());
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
    fn every_path_form_of_a_call_needs_a_proof() {
        let body = syn::parse_quote!({
            let (x, items) = (1, Vec::new());
            <Self>::touch(self);
            <Mailer as Sender>::send(x);
            (*self).touch();
            (&mut *self).touch();
            (&*self).touch();
            (self).touch();
            let s = &mut *self;
            s.touch();
            let g = persist;
            g(1);
            items.for_each(persist);
            items.map(Self::touch);
            items.map(helper::f);
            Mailer::send(x);
            Ticket::next();
            Proc::new("ls");
            Wrapper::<u8>::make();
            <Mailer>::send();
        });
        // every line but the bindings of `s` and the call of `g` (its value was proved)
        assert_eq!(findings(&body), (0, 16));
    }

    #[test]
    fn locals_vouch_only_within_their_scope() {
        let body = syn::parse_quote!({
            match event {
                Event::A => {
                    let f = |x: u64| x;
                    f(1);
                }
                Event::B => {
                    f(2);
                }
            }
            {
                let g = |x: u64| x;
                g(3);
            }
            g(4);
            if let Some(h) = event.h {
                h(5);
            }
            h(6);
            for k in self.callbacks.iter() {
                k(7);
            }
            k(8);
            self.items.iter().map(|l| l(9)).count();
            l(10);
        });
        // f(2), g(4), h(6), k(8), l(10)
        assert_eq!(findings(&body), (0, 5));
    }

    #[test]
    fn methods_of_bindings_typed_with_a_user_type_need_proofs() {
        let body = syn::parse_quote!({
            event.describe();
            let copy: Cart = Cart::default();
            copy.touch();
            let literal = Money { cents: 1 };
            literal.convert();
            let apply_one = |other: &mut Self| other.touch();
            write!(self, "{}", 1).unwrap();
            let text: String = String::new();
            text.len();
            event.clone();
            let inferred = Money::new(1);
            inferred.convert();
        });
        // describe, touch, convert, touch, write_str; `Money::new` itself
        assert_eq!(findings(&body), (0, 6));
    }

    #[test]
    fn iterating_a_hash_map_declared_in_the_body_is_refused() {
        let body = syn::parse_quote!({
            let mut counts: HashMap<String, u64> = HashMap::new();
            let seen = HashSet::with_capacity(4);
            let grouped = event.items.iter().collect::<HashMap<_, _>>();
            counts.insert(event.key.clone(), 1);
            let known = seen.contains(&event.key) && counts.get(&event.key).is_some();
            *counts.entry(event.key.clone()).or_default() += 1;
            for (key, count) in &counts {}
            self.total = counts.values().sum();
            self.keys = seen.iter().cloned().collect();
            self.all = grouped.into_iter().collect();
            let ordered: BTreeMap<String, u64> = BTreeMap::new();
            for (key, count) in &ordered {}
        });
        // for over counts, counts.values, seen.iter, grouped.into_iter
        assert_eq!(findings(&body), (4, 0));
    }

    #[test]
    fn imported_std_functions_are_proved_to_be_std() {
        let body = syn::parse_quote!({
            let a = take(&mut self.items);
            let b = mem::replace(&mut self.count, max(1, 2));
            let c = ::core::mem::take(&mut self.other);
        });
        // take, mem::replace, max: each proved to be std's function
        assert_eq!(findings(&body), (0, 3));
    }

    #[test]
    fn interior_mutability_of_statics_is_refused() {
        let body = syn::parse_quote!({
            COUNTER.fetch_add(1, Ordering::Relaxed);
            CACHE.with(|cache| cache.borrow().len());
            crate::CONFIG.lock().unwrap();
            LAST.get();
            let table = TABLE.get(1);
            let len = NAME.len();
        });
        assert_eq!(findings(&body), (4, 0));
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
