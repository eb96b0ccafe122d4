//! The keywords `#[derive(Event)]` reads, in one place, so that the parser, the checks
//! and the error messages cannot disagree on their spelling.

use std::fmt::{self, Display};

use syn::{Ident, Path};

/// One attribute keyword.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Symbol(&'static str);

// `#[event(...)]`
pub const EVENT: Symbol = Symbol("event");
pub const NAME: Symbol = Symbol("name");
pub const VERSION: Symbol = Symbol("version");
pub const UPCAST: Symbol = Symbol("upcast");

// `#[serde(...)]`: only the keys some check refuses are named here; every other serde
// attribute is the user's business and passes untouched.
pub const SERDE: Symbol = Symbol("serde");
pub const SKIP: Symbol = Symbol("skip");
pub const SKIP_SERIALIZING: Symbol = Symbol("skip_serializing");
pub const SKIP_DESERIALIZING: Symbol = Symbol("skip_deserializing");
pub const SKIP_SERIALIZING_IF: Symbol = Symbol("skip_serializing_if");
pub const DEFAULT: Symbol = Symbol("default");
pub const TAG: Symbol = Symbol("tag");
pub const CONTENT: Symbol = Symbol("content");
pub const UNTAGGED: Symbol = Symbol("untagged");
pub const OTHER: Symbol = Symbol("other");
pub const FROM: Symbol = Symbol("from");
pub const TRY_FROM: Symbol = Symbol("try_from");
pub const INTO: Symbol = Symbol("into");

impl PartialEq<Symbol> for Ident {
    fn eq(&self, word: &Symbol) -> bool {
        self == word.0
    }
}

impl PartialEq<Symbol> for Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
