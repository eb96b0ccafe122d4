//! Rehydration: rebuilding an aggregate as a strict fold of its stream.
//!
//! Events must arrive as versions 1, 2, 3, … with no gap and no duplicate. Anything
//! else is a typed error that names the stream and the expected and found versions,
//! because a skipped or repeated event silently corrupts every state after it.

use crate::aggregate::Aggregate;
use crate::event::DecodeError;
use crate::recorded::Recorded;
use std::sync::Arc;

use crate::__private::PurityChecked;
use crate::clock::Timestamp;
use crate::event::Event;
use crate::recorded::{Cursor, Metadata, StoredEvent};
use uuid::Uuid;

/// A stream could not be folded into an aggregate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RehydrateError {
    /// An event is missing, repeated or out of order.
    #[error("stream {stream_id}: expected version {expected}, got {found}")]
    VersionMismatch {
        /// The stream's aggregate type.
        stream_type: String,
        /// The stream id.
        stream_id: String,
        /// The version that had to come next.
        expected: u64,
        /// The version that came.
        found: u64,
    },
    /// An event of another stream was handed to this fold.
    #[error("stream {stream_id}: event at version {version} belongs to stream {found_type}/{found_id}")]
    WrongStream {
        /// The stream being folded.
        stream_id: String,
        /// The version of the stray event.
        version: u64,
        /// The stray event's stream type.
        found_type: String,
        /// The stray event's stream id.
        found_id: String,
    },
    /// A stored event could not be decoded.
    #[error("stream {stream_id}, version {version}, event type `{event_type}`: {source}")]
    Decode {
        /// The stream's aggregate type.
        stream_type: String,
        /// The stream id.
        stream_id: String,
        /// The event's stream version.
        version: u64,
        /// The stored type name.
        event_type: String,
        /// What went wrong.
        #[source]
        source: Box<DecodeError>,
    },
}

/// An aggregate's state together with the version of the last event folded into it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    stream_type: Arc<str>,
    stream_id: Arc<str>,
    state: A,
    version: u64,
}

impl<A: Aggregate> Loaded<A> {
    /// The state of a stream with no events yet: `A::default()` at version 0.
    #[must_use]
    pub fn new(stream_id: &str) -> Self {
        Self::from_state(stream_id, A::default(), 0)
    }

    /// Resumes from a state known to be at `version` (for example a snapshot).
    pub fn from_state(stream_id: &str, state: A, version: u64) -> Self {
        Self { stream_type: Arc::from(A::stream_type()), stream_id: Arc::from(stream_id), state, version }
    }

    /// Decodes and folds the next stored event, which must be version `version() + 1`
    /// of this stream.
    pub fn fold(&mut self, stored: StoredEvent) -> Result<(), RehydrateError> {
        self.check(&stored.stream_type, &stored.stream_id, stored.stream_version)?;
        self.fold_parts(EventParts {
            event_id: stored.event_id,
            stream_version: stored.stream_version,
            cursor: stored.cursor,
            event_type: &stored.event_type,
            schema_version: stored.schema_version,
            occurred_at: stored.occurred_at,
            metadata: stored.metadata,
            payload: &stored.payload,
        })
    }

    /// Decodes and folds the next event of this stream, from parts a backend read;
    /// the caller has checked that they belong to this stream.
    pub(crate) fn fold_parts(&mut self, parts: EventParts<'_>) -> Result<(), RehydrateError> {
        self.check_version(parts.stream_version)?;
        let version = parts.stream_version;
        if <A as PurityChecked>::READS_ENVELOPE {
            let recorded = decode_parts::<A::Event>(&self.stream_type, &self.stream_id, parts)?;
            self.state.apply_recorded(&recorded);
        } else {
            // `apply_recorded` is the default, which hands `apply` the bare event.
            let event = decode_event::<A::Event>(&self.stream_type, &self.stream_id, &parts)?;
            self.state.apply(&event);
        }
        self.version = version;
        Ok(())
    }

    /// Folds an already decoded event, with the same version checks as [`fold`](Self::fold).
    pub fn fold_recorded(&mut self, recorded: &Recorded<A::Event>) -> Result<(), RehydrateError> {
        self.check(&recorded.stream_type, &recorded.stream_id, recorded.stream_version)?;
        self.state.apply_recorded(recorded);
        self.version = recorded.stream_version;
        Ok(())
    }

    fn check(&self, stream_type: &str, stream_id: &str, version: u64) -> Result<(), RehydrateError> {
        if stream_id != &*self.stream_id || stream_type != &*self.stream_type {
            return Err(RehydrateError::WrongStream {
                stream_id: self.stream_id.to_string(),
                version,
                found_type: stream_type.to_owned(),
                found_id: stream_id.to_owned(),
            });
        }
        self.check_version(version)
    }

    fn check_version(&self, version: u64) -> Result<(), RehydrateError> {
        let expected = self.version + 1;
        if version != expected {
            return Err(RehydrateError::VersionMismatch {
                stream_type: self.stream_type.to_string(),
                stream_id: self.stream_id.to_string(),
                expected,
                found: version,
            });
        }
        Ok(())
    }

    /// The folded state.
    pub fn state(&self) -> &A {
        &self.state
    }

    /// The version of the last event folded (0 for a new stream).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The stream id.
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// Whether this fold and `recorded` are of the same stream (no string compare when
    /// they share it).
    pub(crate) fn shared_stream(&self) -> (&Arc<str>, &Arc<str>) {
        (&self.stream_type, &self.stream_id)
    }

    /// Takes the state.
    pub fn into_state(self) -> A {
        self.state
    }
}

/// Folds a whole stream, checking that versions run 1..n without gap or duplicate.
///
/// ```
/// # use es::{aggregate, Aggregate, Event, StoredEvent, Cursor, Metadata, Timestamp, SequentialIds};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Serialize, Deserialize, Event)]
/// # struct Added { n: u64 }
/// # #[aggregate]
/// # #[derive(Debug, Default)]
/// # struct Counter { total: u64 }
/// # #[aggregate]
/// # impl Aggregate for Counter {
/// #     type Event = Added;
/// #     fn apply(&mut self, event: &Added) { self.total += event.n; }
/// # }
/// let stored = |version: u64| StoredEvent {
///     event_id: SequentialIds::nth(version),
///     stream_type: "Counter".into(),
///     stream_id: "c-1".into(),
///     stream_version: version,
///     cursor: Cursor::at_position(version),
///     event_type: "Added".into(),
///     schema_version: 1,
///     occurred_at: Timestamp::EPOCH,
///     metadata: Metadata::default(),
///     payload: r#"{"n":2}"#.into(),
/// };
/// let counter = es::rehydrate::<Counter>("c-1", [stored(1), stored(2)])?;
/// assert_eq!((counter.state().total, counter.version()), (4, 2));
///
/// let gap = es::rehydrate::<Counter>("c-1", [stored(1), stored(3)]).unwrap_err();
/// assert_eq!(gap.to_string(), "stream c-1: expected version 2, got 3");
/// # Ok::<(), es::RehydrateError>(())
/// ```
pub fn rehydrate<A: Aggregate>(
    stream_id: &str,
    events: impl IntoIterator<Item = StoredEvent>,
) -> Result<Loaded<A>, RehydrateError> {
    let mut loaded = Loaded::new(stream_id);
    for stored in events {
        loaded.fold(stored)?;
    }
    Ok(loaded)
}

impl StoredEvent {
    /// Decodes the payload into `E`, keeping the envelope, and consumes the stored
    /// event (its strings move into the envelope). Errors name the stream, version and
    /// type. To decode an event only lent to you, as projection handlers are, use
    /// [`decode_ref`](Self::decode_ref).
    pub fn decode<E: Event>(self) -> Result<Recorded<E>, RehydrateError> {
        let (stream_type, stream_id) = (Arc::from(self.stream_type), Arc::from(self.stream_id));
        decode_parts(
            &stream_type,
            &stream_id,
            EventParts {
                event_id: self.event_id,
                stream_version: self.stream_version,
                cursor: self.cursor,
                event_type: &self.event_type,
                schema_version: self.schema_version,
                occurred_at: self.occurred_at,
                metadata: self.metadata,
                payload: &self.payload,
            },
        )
    }

    /// Decodes the payload into `E` without consuming the stored event: the envelope's
    /// strings are copied, the payload is only read. Older schema versions are upcast
    /// first, as for loads. Errors name the stream, version and type.
    ///
    /// A projection that sees every event uses it to decode the ones of the stream
    /// types it cares about:
    ///
    /// ```
    /// # use es::{Cursor, Event, Metadata, StoredEvent, Timestamp, SequentialIds};
    /// # use serde::{Deserialize, Serialize};
    /// #[derive(Debug, PartialEq, Serialize, Deserialize, Event)]
    /// struct Deposited { amount: u64 }
    ///
    /// let stored = StoredEvent {
    ///     event_id: SequentialIds::nth(1),
    ///     stream_type: "Account".into(),
    ///     stream_id: "a-1".into(),
    ///     stream_version: 1,
    ///     cursor: Cursor::at_position(1),
    ///     event_type: "Deposited".into(),
    ///     schema_version: 1,
    ///     occurred_at: Timestamp::EPOCH,
    ///     metadata: Metadata::default(),
    ///     payload: r#"{"amount":5}"#.into(),
    /// };
    /// if stored.stream_type == "Account" {
    ///     let recorded = stored.decode_ref::<Deposited>()?;
    ///     assert_eq!((recorded.event(), recorded.stream_id()), (&Deposited { amount: 5 }, "a-1"));
    /// }
    /// # Ok::<(), es::RehydrateError>(())
    /// ```
    pub fn decode_ref<E: Event>(&self) -> Result<Recorded<E>, RehydrateError> {
        decode_parts(&Arc::from(self.stream_type.as_str()), &Arc::from(self.stream_id.as_str()), EventParts::of(self))
    }

    /// Decodes the event if it belongs to a stream of aggregate `A`, without consuming
    /// it; `None` for an event of another stream type, which is not decoded at all.
    /// The typed start of a store's own projection handler:
    ///
    /// ```
    /// # use es::{aggregate, Aggregate, Cursor, Event, Metadata, StoredEvent, Timestamp, SequentialIds};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, PartialEq, Serialize, Deserialize, Event)]
    /// # struct Deposited { amount: u64 }
    /// # #[aggregate]
    /// # #[derive(Debug, Default)]
    /// # struct Account { balance: u64 }
    /// # #[aggregate]
    /// # impl Aggregate for Account {
    /// #     type Event = Deposited;
    /// #     fn apply(&mut self, event: &Deposited) { self.balance += event.amount; }
    /// # }
    /// fn deposited(event: &StoredEvent) -> Result<u64, es::RehydrateError> {
    ///     let Some(recorded) = event.decode_for::<Account>()? else { return Ok(0) };
    ///     Ok(recorded.event().amount)
    /// }
    /// # let mut stored = StoredEvent {
    /// #     event_id: SequentialIds::nth(1), stream_type: "Account".into(), stream_id: "a-1".into(),
    /// #     stream_version: 1, cursor: Cursor::at_position(1), event_type: "Deposited".into(),
    /// #     schema_version: 1, occurred_at: Timestamp::EPOCH, metadata: Metadata::default(),
    /// #     payload: r#"{"amount":5}"#.into(),
    /// # };
    /// assert_eq!(deposited(&stored)?, 5);
    /// stored.stream_type = "Audit".into();
    /// stored.payload = "not even JSON".into();
    /// assert_eq!(deposited(&stored)?, 0); // another stream type: not decoded
    /// # Ok::<(), es::RehydrateError>(())
    /// ```
    pub fn decode_for<A: Aggregate>(&self) -> Result<Option<Recorded<A::Event>>, RehydrateError> {
        if self.stream_type != A::stream_type() {
            return Ok(None);
        }
        self.decode_ref().map(Some)
    }
}

/// A stored event's fields, borrowed where a backend can lend them.
pub(crate) struct EventParts<'a> {
    pub(crate) event_id: Uuid,
    pub(crate) stream_version: u64,
    pub(crate) cursor: Cursor,
    pub(crate) event_type: &'a str,
    pub(crate) schema_version: u32,
    pub(crate) occurred_at: Timestamp,
    pub(crate) metadata: Metadata,
    pub(crate) payload: &'a str,
}

impl<'a> EventParts<'a> {
    /// The parts of a stored event (its metadata cloned, which is cheap when empty).
    pub(crate) fn of(stored: &'a StoredEvent) -> Self {
        Self {
            event_id: stored.event_id,
            stream_version: stored.stream_version,
            cursor: stored.cursor,
            event_type: &stored.event_type,
            schema_version: stored.schema_version,
            occurred_at: stored.occurred_at,
            metadata: stored.metadata.clone(),
            payload: &stored.payload,
        }
    }
}

/// Decodes the event alone, naming the stream, version and type on failure.
pub(crate) fn decode_event<E: Event>(
    stream_type: &str,
    stream_id: &str,
    parts: &EventParts<'_>,
) -> Result<E, RehydrateError> {
    E::decode(parts.event_type, parts.schema_version, parts.payload).map_err(|source| RehydrateError::Decode {
        stream_type: stream_type.to_owned(),
        stream_id: stream_id.to_owned(),
        version: parts.stream_version,
        event_type: parts.event_type.to_owned(),
        source: Box::new(source),
    })
}

/// Decodes one event of the stream `stream_type/stream_id` from its parts.
pub(crate) fn decode_parts<E: Event>(
    stream_type: &Arc<str>,
    stream_id: &Arc<str>,
    parts: EventParts<'_>,
) -> Result<Recorded<E>, RehydrateError> {
    let event = decode_event::<E>(stream_type, stream_id, &parts)?;
    // The stored name is one of E's own: keep the static one, no copy per event.
    let event_type =
        E::TYPES.iter().map(|ty| ty.name).find(|name| *name == parts.event_type).unwrap_or(event.event_type().name);
    Ok(Recorded {
        event_id: parts.event_id,
        stream_type: Arc::clone(stream_type),
        stream_id: Arc::clone(stream_id),
        stream_version: parts.stream_version,
        cursor: parts.cursor,
        event_type,
        schema_version: parts.schema_version,
        occurred_at: parts.occurred_at,
        metadata: parts.metadata,
        event,
    })
}
