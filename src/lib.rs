#![doc = include_str!("../README.md")]

// `es_core::__private` (hidden) comes through the glob: generated code names it
// `::es::__private`.
pub use es_core::*;
pub use es_derive::{Event, aggregate, pure};
