//! Attribute keywords and generated names, in one place.

/// `#[aggregate(trust(path::to::f, Type::method))]`: callees the user vouches for.
pub const TRUST: &str = "trust";
/// `#[aggregate(snapshot(version = N, every = M))]`: snapshots of the state.
pub const SNAPSHOT: &str = "snapshot";
/// The snapshot's schema version.
pub const VERSION: &str = "version";
/// Events between snapshots.
pub const EVERY: &str = "every";
/// `#[es::allow_impure(reason = "...")]`: the escape hatch on one statement or expression.
pub const ALLOW_IMPURE: &str = "allow_impure";
/// The mandatory argument of the escape hatch.
pub const REASON: &str = "reason";
/// The facade crate, as users spell attribute paths (`#[es::allow_impure]`).
pub const ES: &str = "es";

/// The hidden marker `#[es::pure]` leaves beside a checked function `name`, and that
/// `#[aggregate]` refers to at each call of `name`. Its name reads as the fix, because
/// rustc shows it verbatim when the marker is missing.
pub fn marker_name(function: &syn::Ident) -> syn::Ident {
    let name = function.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name);
    syn::Ident::new(&format!("__mark_{name}_with_es_pure"), function.span())
}

/// The marker constant inside the type-namespace twin of a checked free function. Its
/// name is fixed, so that a renamed import (`use pricing::fee as f; f(..)`) finds it:
/// the twin is renamed along with the function.
pub const FREE_MARKER: &str = "__es_pure_fn";
