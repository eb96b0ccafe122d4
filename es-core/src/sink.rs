//! Sinks: where the relay delivers events. The [`Sink`] trait and its error, and the
//! built-in sinks: an in-process channel and a JSON-lines file (the NATS JetStream
//! sink lives in `nats.rs`, behind its feature). Implement [`Sink`] for anything else.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::relay::LeaseGeneration;
use crate::store::StoredEvent;

/// A sink refused or failed to take events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    message: String,
    permanent: bool,
}

impl SinkError {
    /// A failure that may pass (network, broker down): the row is retried.
    pub fn transient(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: false }
    }

    /// A failure that retrying cannot fix (for example an event larger than the
    /// broker accepts): the row is parked at once.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: true }
    }

    /// Whether retrying cannot help.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

/// Where the relay delivers events: a broker, a queue, a file, another service.
///
/// `deliver` returns `Ok` only once every event of the batch is durably accepted; the
/// relay then marks them delivered. Events arrive in commit order; a sink must keep
/// that order within a stream: it must not let a later event of a stream reach its
/// destination before every earlier one was accepted there. Deliveries may repeat
/// after a crash or a lease handover: downstream deduplicates by
/// [`StoredEvent::event_id`].
///
/// Each delivery carries the [`LeaseGeneration`] of the relay that makes it. A relay
/// stopped past its lease may still deliver a batch after the next holder took over
/// (its acknowledgement is then refused, and the holder delivers the batch again); a
/// destination that remembers the highest generation it has seen can refuse such
/// late deliveries. The built-in sinks pass it on: the `Es-Lease-Generation` header
/// (JetStream), the `lease_generation` field (JSON lines, [`Relayed`]).
///
/// ```
/// use es::{LeaseGeneration, Sink, SinkError, StoredEvent};
///
/// /// Posts events to another service; the event id is its idempotency key.
/// struct Webhook;
///
/// impl Sink for Webhook {
///     async fn deliver(&self, events: &[StoredEvent], _lease: LeaseGeneration) -> Result<(), SinkError> {
///         for event in events {
///             let accepted = !event.payload.is_empty(); // stands for the service's answer
///             if !accepted {
///                 return Err(SinkError::transient(format!("service refused {}", event.event_id)));
///             }
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait Sink: Send + Sync {
    /// Delivers a batch, in order, for the relay holding the lease generation `lease`.
    fn deliver(
        &self,
        events: &[StoredEvent],
        lease: LeaseGeneration,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// An event as [`ChannelSink`] hands it over: the event, and the lease generation of
/// the relay that delivered it.
#[derive(Debug, Clone, PartialEq)]
pub struct Relayed {
    /// The event.
    pub event: StoredEvent,
    /// The generation of the outbox lease the delivering relay held.
    pub lease_generation: LeaseGeneration,
}

/// Delivers events into a tokio channel, for consumers in the same process.
///
/// Delivery waits while the channel is full (backpressure) and fails while the
/// receiver is gone, so rows stay in the outbox until someone listens again. Each
/// event comes with the lease generation of the relay that delivered it ([`Relayed`]).
#[derive(Debug, Clone)]
pub struct ChannelSink {
    sender: mpsc::Sender<Relayed>,
}

impl ChannelSink {
    /// A sink and the receiver of its events, with room for `capacity` events.
    #[must_use]
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<Relayed>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (Self { sender }, receiver)
    }
}

impl Sink for ChannelSink {
    async fn deliver(&self, events: &[StoredEvent], lease: LeaseGeneration) -> Result<(), SinkError> {
        for event in events {
            self.sender
                .send(Relayed { event: event.clone(), lease_generation: lease })
                .await
                .map_err(|_| SinkError::transient("the channel's receiver is gone"))?;
        }
        Ok(())
    }
}

/// Appends each event as one JSON object per line to a file, and acknowledges a
/// batch only after it is flushed and synced to disk.
///
/// Each line holds the envelope, the lease generation of the relay that wrote it, and
/// the payload as JSON:
/// `{"event_id":"…","stream_type":"Account","stream_id":"a-1","stream_version":1,
/// "position":1,"event_type":"Deposited","schema_version":1,
/// "occurred_at":1767225600000000,"metadata":{},"lease_generation":3,
/// "payload":{"amount":5}}`.
/// After a crash or a lease handover the same event can appear twice; readers
/// deduplicate by `event_id`, keeping the first: within a stream, first appearances
/// are in version order.
///
/// Relays in several processes may append to one file: each batch is a single
/// append. A write that fails halfway (a full disk) is cut back to where its batch
/// began, which would also cut lines another process appended in the meantime: where
/// writes can fail, give each process a file of its own.
#[derive(Debug, Clone)]
pub struct JsonLinesSink {
    path: PathBuf,
    file: Arc<Mutex<std::fs::File>>,
}

impl JsonLinesSink {
    /// Opens (or creates) the file for appending. A line torn by a crash during an
    /// earlier write is closed with a newline, so it stays one unreadable line of its
    /// own instead of spoiling the next one; readers skip lines that do not parse.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
        use std::io::{Read, Seek, SeekFrom};
        let path = path.as_ref().to_owned();
        let mut file = std::fs::OpenOptions::new().create(true).read(true).append(true).open(&path)?;
        if file.metadata()?.len() > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
                file.sync_data()?;
            }
        }
        Ok(Self { path, file: Arc::new(Mutex::new(file)) })
    }

    /// The file written to.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[derive(Serialize)]
struct Line<'a> {
    event_id: uuid::Uuid,
    stream_type: &'a str,
    stream_id: &'a str,
    stream_version: u64,
    position: u64,
    event_type: &'a str,
    schema_version: u32,
    occurred_at: i64,
    metadata: &'a crate::recorded::Metadata,
    lease_generation: LeaseGeneration,
    payload: &'a RawValue,
}

impl Sink for JsonLinesSink {
    async fn deliver(&self, events: &[StoredEvent], lease: LeaseGeneration) -> Result<(), SinkError> {
        let mut buffer = Vec::with_capacity(events.len() * 256);
        for event in events {
            let payload: &RawValue = serde_json::from_str(&event.payload).map_err(|error| {
                SinkError::permanent(format!("payload at position {} is not JSON: {error}", event.cursor.position))
            })?;
            let line = Line {
                event_id: event.event_id,
                stream_type: &event.stream_type,
                stream_id: &event.stream_id,
                stream_version: event.stream_version,
                position: event.cursor.position,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                occurred_at: event.occurred_at.as_unix_micros(),
                metadata: &event.metadata,
                lease_generation: lease,
                payload,
            };
            serde_json::to_writer(&mut buffer, &line).map_err(|error| SinkError::permanent(error.to_string()))?;
            buffer.push(b'\n');
        }
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || {
            let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
            // A write that fails halfway (a full disk) must not leave a torn line for
            // the retry to be glued onto: cut the file back to where the batch began.
            let start = file.metadata()?.len();
            let written = file.write_all(&buffer).and_then(|()| file.flush()).and_then(|()| file.sync_data());
            if written.is_err() {
                let _ = file.set_len(start);
            }
            written
        })
        .await
        .map_err(|error| SinkError::transient(error.to_string()))?
        .map_err(|error| SinkError::transient(format!("writing the JSON-lines file failed: {error}")))
    }
}
