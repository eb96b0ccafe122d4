#![doc = include_str!("../README.md")]

pub use es_core::*;
pub use es_derive::{Event, aggregate, pure};

#[doc(hidden)]
pub use es_core::private as __private;
