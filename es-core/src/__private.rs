//! Support for the code `es-derive` generates. Not public API: names here may change
//! in any release.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::event::{DecodeError, EncodeError, EventType};
use crate::payload;
use crate::upcast::{self, UpcastFn};

pub use serde;
pub use serde_json;

/// Implemented by every type that can be recorded. Generated code asks for it so that
/// a missing serde derive is reported with the fix rather than as a bare trait bound.
#[diagnostic::on_unimplemented(
    message = "event `{Self}` must be serializable to be recorded",
    label = "this event type does not implement serde's `Serialize` and `Deserialize`",
    note = "add `#[derive(serde::Serialize, serde::Deserialize)]` next to `#[derive(Event)]`"
)]
pub trait Recordable: Serialize + DeserializeOwned {}
impl<T: Serialize + DeserializeOwned> Recordable for T {}

/// Proves at compile time that an event type can be recorded.
pub const fn assert_recordable<T: Recordable>() {}

/// The seal on a proof that only `es`'s macros write. `PROOF` tells the proofs apart;
/// `KEY` is a number the macros know and this documentation does not show: a proof is
/// an associated `type Seal = Seal<Self, PROOF, KEY>`, and only the right key for the
/// right proof satisfies [`Sealed`]. Because `Self` is part of the seal, one type's seal
/// (`<Other as PurityChecked>::Seal`) cannot stand in for another's.
///
/// This stops a hand-written `impl PurityChecked for T {}`, with any items the
/// documentation names. It cannot stop a user who copies the macros' expansion
/// (`cargo expand`) on purpose: a proc macro's output is ordinary code.
pub struct Seal<T: ?Sized, const PROOF: u8, const KEY: u64>(PhantomData<fn() -> Box<T>>);

/// Which proof a [`Seal`] stands for.
pub const PURITY: u8 = 1;
/// See [`PURITY`].
pub const STATE: u8 = 2;
/// See [`PURITY`].
pub const DEFAULT: u8 = 3;

/// Satisfied only by seals the macros write; see [`Seal`].
#[diagnostic::on_unimplemented(
    message = "this proof was not written by `es`'s macros",
    label = "only `#[es::aggregate]` and `#[es::pure]` implement this proof",
    note = "remove the hand-written impl and put the attribute on the code it vouches for"
)]
pub trait Sealed<T: ?Sized, const PROOF: u8> {}

// Not listed in rustc's "other types implement" help, which would show the key.
#[diagnostic::do_not_recommend]
impl<T: ?Sized> Sealed<T, PURITY> for Seal<T, PURITY, 0x5eed_0fe5_a991_0001> {}
// Not listed in rustc's "other types implement" help, which would show the key.
#[diagnostic::do_not_recommend]
impl<T: ?Sized> Sealed<T, STATE> for Seal<T, STATE, 0x5eed_0fe5_5747_0002> {}
// Not listed in rustc's "other types implement" help, which would show the key.
#[diagnostic::do_not_recommend]
impl<T: ?Sized> Sealed<T, DEFAULT> for Seal<T, DEFAULT, 0x5eed_0fe5_def0_0003> {}

/// Implemented by `#[aggregate]` only: an aggregate whose handlers were checked.
#[diagnostic::on_unimplemented(
    message = "`{Self}` implements `Aggregate` without `#[es::aggregate]`",
    label = "its `apply` handler was not checked for purity",
    note = "put `#[es::aggregate]` on the `impl Aggregate for {Self}` block"
)]
pub trait PurityChecked {
    /// The macro's seal; see [`Seal`].
    type Seal: Sealed<Self, PURITY>;
    /// Whether the aggregate overrides `apply_recorded`; when it does not, folds call
    /// `apply` with the bare event and build no envelope.
    const READS_ENVELOPE: bool;
}

/// Implemented by `#[aggregate]` on the state type only: every field type was checked
/// to be data (no I/O handles, functions, shared or interior mutability, RNGs, raw
/// pointers or references).
#[diagnostic::on_unimplemented(
    message = "the state type `{Self}` was not checked to be data",
    label = "put `#[es::aggregate]` on the state type `{Self}`",
    note = "write `#[es::aggregate]` above the `#[derive(..)]` of `{Self}`: it checks that every field is data (no file, socket, clock, RNG, function, `Rc`, `Cell`, `Mutex`, ...), so that a replay can rebuild it"
)]
pub trait CheckedState {
    /// The macro's seal; see [`Seal`].
    type Seal: Sealed<Self, STATE>;
}

/// Implemented for a state whose `Default` is derived (by `#[aggregate]` on the state
/// type) or hand-written and checked (by `#[es::pure]` on the `impl Default`).
#[diagnostic::on_unimplemented(
    message = "`{Self}`'s `Default` is the state before the first event and is part of every replay: derive it, or mark the hand-written impl `#[es::pure]`",
    label = "its `Default` was not checked",
    note = "write `#[derive(Default)]` below `#[es::aggregate]` on `{Self}` (the attribute sees only the derives written below it), or `#[es::pure] impl Default for {Self} {{ .. }}`"
)]
pub trait CheckedDefault {
    /// The macro's seal; see [`Seal`].
    type Seal: Sealed<Self, DEFAULT>;
}

/// The value behind the marker that `#[es::pure]` leaves beside a function it
/// checked; `#[aggregate]` refers to the marker of every function it calls.
#[derive(Debug, Clone, Copy)]
pub struct PureMarker;

/// Encodes an aggregate's state for a snapshot: serde's JSON, refusing what JSON
/// cannot give back (NaN and infinite floats), exactly as for events.
pub fn encode_snapshot<T: Serialize>(state: &T) -> Result<String, serde_json::Error> {
    crate::snapshot::encode_state(state)
}

/// Encodes an event's payload: the content alone, no enum tag (see `payload.rs`).
pub fn encode<E: Serialize>(event: &E, event_type: &'static EventType) -> Result<String, EncodeError> {
    payload::write(event).map_err(|source| EncodeError { event_type: event_type.name, source })
}

/// Decodes a payload stored at `stored_version` into the variant `variant` of `E`
/// (or into `E` itself when `variant` is `None`: a struct event), upcasting first
/// when the stored version is older.
pub fn decode<E: DeserializeOwned>(
    event_type: &'static EventType,
    variant: Option<u32>,
    stored_version: u32,
    upcasters: &[(u32, UpcastFn)],
    payload: &str,
) -> Result<E, DecodeError> {
    let upcast;
    let payload = match stored_version.cmp(&event_type.version) {
        std::cmp::Ordering::Equal => payload,
        std::cmp::Ordering::Greater => {
            return Err(DecodeError::NewerVersion {
                event_type: event_type.name,
                stored: stored_version,
                current: event_type.version,
            });
        }
        std::cmp::Ordering::Less => {
            upcast = upcast::run(event_type.name, stored_version, event_type.version, upcasters, payload)?;
            &upcast
        }
    };
    payload::read(variant, payload).map_err(|source| DecodeError::Payload {
        event_type: event_type.name,
        schema_version: event_type.version,
        source,
    })
}

/// The error for a type name no variant carries.
#[must_use]
pub fn unknown_type(event_type: &str) -> DecodeError {
    DecodeError::UnknownType { event_type: event_type.to_owned() }
}
