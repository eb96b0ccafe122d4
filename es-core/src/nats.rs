//! A relay sink that publishes to NATS JetStream.
//!
//! Each event is published on `<prefix>.<stream type>` with the header
//! `Nats-Msg-Id` set to the event id, so the JetStream stream's duplicate window drops
//! a redelivery, and the relay marks a row delivered only after JetStream acknowledged
//! it. The duplicate window is finite (two minutes by default): a redelivery after it
//! (a relay down for longer, a re-queued parked row) reaches consumers again, so the
//! event id also travels in the `Es-Event-Id` header for consumers to deduplicate on.
//!
//! Headers: `Es-Event-Id`, `Es-Stream-Type`, `Es-Stream-Id`, `Es-Stream-Version`,
//! `Es-Event-Type`, `Es-Schema-Version`, `Es-Occurred-At` (Unix microseconds),
//! `Es-Position`, and `Es-Metadata` (JSON, when set). The message body is the event's
//! JSON payload.
//!
//! An event larger than the server's maximum payload is refused before anything of
//! its batch is published, as a permanent failure: the relay parks it at once rather
//! than retrying what can never succeed.
//!
//! A batch is published in one go and its acknowledgements awaited in order. If the
//! server loses an early message of a batch while storing a later one of the same
//! stream (a transient failure during a leader election, say), the relay retries the
//! early one and consumers see the two out of order; consumers that must not, check
//! `Es-Stream-Version` against the last one they applied.

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, context::PublishErrorKind};
use async_nats::{HeaderMap, HeaderValue};

use crate::sink::{Sink, SinkError};
use crate::store::StoredEvent;

/// Publishes relayed events to JetStream. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct JetStreamSink {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    subject_prefix: String,
}

impl JetStreamSink {
    /// A sink publishing on `<subject_prefix>.<stream type>` through `client`. A
    /// JetStream stream must capture those subjects (for example `<prefix>.>`).
    pub fn new(client: async_nats::Client, subject_prefix: impl Into<String>) -> Self {
        let jetstream = jetstream::new(client.clone());
        Self { client, jetstream, subject_prefix: subject_prefix.into() }
    }

    /// The subject an event of `stream_type` is published on. Characters a subject
    /// token cannot hold (`.`, `*`, `>`, whitespace) become `_`.
    #[must_use]
    pub fn subject(&self, stream_type: &str) -> String {
        let token: String = stream_type
            .chars()
            .map(|c| if c == '.' || c == '*' || c == '>' || c.is_whitespace() { '_' } else { c })
            .collect();
        format!("{}.{}", self.subject_prefix, if token.is_empty() { "_" } else { &token })
    }

    /// The headers of an event. A value a NATS header cannot carry (a line break
    /// in a stream id, say) is a permanent failure: the row is parked, and only its
    /// stream waits.
    fn headers(event: &StoredEvent) -> Result<HeaderMap, SinkError> {
        let value = |name: &str, text: &str| {
            text.parse::<HeaderValue>().map_err(|error| {
                SinkError::permanent(format!(
                    "event {} ({}/{} v{}): its {name} cannot travel in a NATS header: {error}",
                    event.event_id, event.stream_type, event.stream_id, event.stream_version
                ))
            })
        };
        let mut headers = HeaderMap::new();
        let id = event.event_id.to_string();
        headers.insert("Nats-Msg-Id", id.as_str());
        headers.insert("Es-Event-Id", id.as_str());
        headers.insert("Es-Stream-Type", value("stream type", &event.stream_type)?);
        headers.insert("Es-Stream-Id", value("stream id", &event.stream_id)?);
        headers.insert("Es-Stream-Version", event.stream_version.to_string().as_str());
        headers.insert("Es-Event-Type", value("event type", &event.event_type)?);
        headers.insert("Es-Schema-Version", event.schema_version.to_string().as_str());
        headers.insert("Es-Occurred-At", event.occurred_at.as_unix_micros().to_string().as_str());
        headers.insert("Es-Position", event.cursor.position.to_string().as_str());
        if !event.metadata.is_empty()
            && let Ok(metadata) = serde_json::to_string(&event.metadata)
        {
            // JSON text escapes line breaks, so metadata always fits in a header.
            headers.insert("Es-Metadata", value("metadata", &metadata)?);
        }
        Ok(headers)
    }
}

/// The size of a message on the wire, as the server counts it against `max_payload`.
fn message_size(headers: &HeaderMap, payload: &[u8]) -> usize {
    let header_bytes: usize = headers
        .iter()
        .map(|(name, values)| {
            let name: &str = name.as_ref();
            values.iter().map(|value| name.len() + value.as_str().len() + 4).sum::<usize>()
        })
        .sum();
    // "NATS/1.0\r\n" and the closing "\r\n".
    payload.len() + header_bytes + 12
}

impl Sink for JetStreamSink {
    async fn deliver(&self, events: &[StoredEvent]) -> Result<(), SinkError> {
        // Fail fast and say why while the broker is away; queued publishes would only
        // time out.
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(SinkError::transient("not connected to the NATS server"));
        }
        let max = self.client.server_info().max_payload;
        let messages = events
            .iter()
            .map(|event| {
                Ok((self.subject(&event.stream_type), Self::headers(event)?, bytes::Bytes::from(event.payload.clone())))
            })
            .collect::<Result<Vec<(String, HeaderMap, bytes::Bytes)>, SinkError>>()?;
        // Refuse an oversized event before publishing anything of the batch.
        for ((_, headers, payload), event) in messages.iter().zip(events) {
            let size = message_size(headers, payload);
            if max > 0 && size > max {
                return Err(SinkError::permanent(format!(
                    "event {} ({}/{} v{}) is {size} bytes, more than the server's max payload of {max} bytes",
                    event.event_id, event.stream_type, event.stream_id, event.stream_version
                )));
            }
        }
        // Publish the batch, then wait for the acknowledgements in order; JetStream
        // keeps the order of one connection's publishes.
        let mut acks = Vec::with_capacity(messages.len());
        for (subject, headers, payload) in messages {
            let publish = PublishMessage::build().payload(payload).headers(headers);
            let ack = self.jetstream.send_publish(subject, publish).await.map_err(publish_error)?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(publish_error)?;
        }
        Ok(())
    }
}

#[allow(clippy::needless_pass_by_value, reason = "used as `map_err(publish_error)`")]
fn publish_error(error: jetstream::context::PublishError) -> SinkError {
    match error.kind() {
        PublishErrorKind::MaxPayloadExceeded => SinkError::permanent(error.to_string()),
        _ => SinkError::transient(format!("JetStream publish failed: {error}")),
    }
}
