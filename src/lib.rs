#![doc = include_str!("../README.md")]

// `es_core::__private` (hidden) comes through the glob: generated code names it
// `::es::__private`.
pub use es_core::*;
pub use es_derive::{Event, aggregate, pure};

/// The `es` command line as a library, for an admin binary that registers the
/// application's aggregates (feature `cli`): see [`cli::App`].
#[cfg(feature = "cli")]
pub use es_cli as cli;
