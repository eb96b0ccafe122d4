//! A relay sink that publishes to NATS JetStream.
//!
//! Each event is published on `<prefix>.<stream type>` with the header
//! `Nats-Msg-Id` set to the event id, so the JetStream stream's duplicate window drops
//! a redelivery, and the relay marks a row delivered only after JetStream acknowledged
//! it. The duplicate window is finite (two minutes by default): a redelivery after it
//! (a relay down for longer, a relay frozen for longer that wakes and publishes what
//! it had in flight, a re-queued parked row) reaches consumers again, so the
//! event id also travels in the `Es-Event-Id` header for consumers to deduplicate on.
//!
//! Headers: `Es-Event-Id`, `Es-Stream-Type`, `Es-Stream-Id`, `Es-Stream-Version`,
//! `Es-Event-Type`, `Es-Schema-Version`, `Es-Occurred-At` (Unix microseconds),
//! `Es-Position`, `Es-Lease-Generation` (the [`LeaseGeneration`] of the relay that
//! published it: a relay that was stopped past its lease may still publish after the
//! next holder took over, and these publishes carry a lower generation), and
//! `Es-Metadata` (JSON, when set). The message body is the event's JSON payload.
//!
//! An event larger than the server's maximum payload is refused before anything of
//! its batch is published, as a permanent failure: the relay parks it at once rather
//! than retrying what can never succeed.
//!
//! **Per-stream order.** Each stream of a batch is published as a chain: its next
//! event goes out only once JetStream acknowledged the one before, while the chains
//! of all the batch's streams run at once. Publishes are pipelined across streams,
//! never within one: a later event of a stream is never in flight before every
//! earlier one of that stream is acknowledged, so a message the server loses (a
//! timeout, a leader election) is retried before anything after it in its stream
//! reaches the server, and consumers see each stream in version order without
//! checking versions themselves. The price is one acknowledgement round trip per
//! event of the busiest stream in a batch: small when a batch spans many streams,
//! and the whole throughput of a batch from one stream (see `docs/BENCHMARKS.md`).
//!
//! **Subjects.** By default an event is published on `<prefix>.<stream type>`;
//! [`SubjectLayout::PerStream`] publishes on `<prefix>.<stream type>.<stream id>`, so a
//! consumer can follow one entity with a subject filter. There, both tokens are
//! encoded so that every stream maps to its own valid subject: ASCII letters, digits
//! and `-` stand for themselves, and every other byte of the UTF-8 text (`_`
//! included) is written `_XX` in upper-case hex (`order.1 2` → `order_2E1_202`), and
//! an empty name is `_`.

use std::collections::HashMap;
use std::fmt::Write as _;

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, context::PublishErrorKind};
use async_nats::{HeaderMap, HeaderValue};

use crate::relay::LeaseGeneration;
use crate::sink::{Sink, SinkError};
use crate::store::StoredEvent;

/// Which subjects events are published on. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubjectLayout {
    /// `<prefix>.<stream type>`; characters a subject token cannot hold (`.`, `*`,
    /// `>`, whitespace) become `_`.
    #[default]
    PerStreamType,
    /// `<prefix>.<stream type>.<stream id>`, both tokens encoded without ambiguity.
    PerStream,
}

/// Publishes relayed events to JetStream. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct JetStreamSink {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    subject_prefix: String,
    layout: SubjectLayout,
}

impl JetStreamSink {
    /// A sink publishing on `<subject_prefix>.<stream type>` through `client`. A
    /// JetStream stream must capture those subjects (for example `<prefix>.>`).
    pub fn new(client: async_nats::Client, subject_prefix: impl Into<String>) -> Self {
        let jetstream = jetstream::new(client.clone());
        Self { client, jetstream, subject_prefix: subject_prefix.into(), layout: SubjectLayout::default() }
    }

    /// Publishes on the subjects of `layout` instead.
    #[must_use]
    pub fn with_layout(mut self, layout: SubjectLayout) -> Self {
        self.layout = layout;
        self
    }

    /// The subject an event of the stream `stream_type`/`stream_id` is published on:
    /// with [`SubjectLayout::PerStream`] and the prefix `events`, the stream
    /// `Order`/`2026.1 a_b` publishes on `events.Order.2026_2E1_20a_5Fb`.
    #[must_use]
    pub fn subject(&self, stream_type: &str, stream_id: &str) -> String {
        match self.layout {
            SubjectLayout::PerStreamType => {
                let token: String = stream_type
                    .chars()
                    .map(|c| if c == '.' || c == '*' || c == '>' || c.is_whitespace() { '_' } else { c })
                    .collect();
                format!("{}.{}", self.subject_prefix, if token.is_empty() { "_" } else { &token })
            }
            SubjectLayout::PerStream => {
                format!("{}.{}.{}", self.subject_prefix, subject_token(stream_type), subject_token(stream_id))
            }
        }
    }

    /// The headers of an event. A value a NATS header cannot carry (a line break
    /// in a stream id, say) is a permanent failure: the row is parked, and only its
    /// stream waits.
    fn headers(event: &StoredEvent, lease: LeaseGeneration) -> Result<HeaderMap, SinkError> {
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
        headers.insert("Es-Lease-Generation", lease.to_string().as_str());
        if !event.metadata.is_empty()
            && let Ok(metadata) = serde_json::to_string(&event.metadata)
        {
            // JSON text escapes line breaks, so metadata always fits in a header.
            headers.insert("Es-Metadata", value("metadata", &metadata)?);
        }
        Ok(headers)
    }
}

/// A name as one subject token, injectively: ASCII letters, digits and `-` as they
/// are, every other byte as `_XX`; empty as `_` (which no encoded byte produces).
fn subject_token(name: &str) -> String {
    if name.is_empty() {
        return "_".to_owned();
    }
    let mut token = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            token.push(char::from(byte));
        } else {
            let _ = write!(token, "_{byte:02X}");
        }
    }
    token
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
    async fn deliver(&self, events: &[StoredEvent], lease: LeaseGeneration) -> Result<(), SinkError> {
        // Fail fast and say why while the broker is away; queued publishes would only
        // time out.
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(SinkError::transient("not connected to the NATS server"));
        }
        let max = self.client.server_info().max_payload;
        let mut messages = events
            .iter()
            .map(|event| {
                let subject = self.subject(&event.stream_type, &event.stream_id);
                Ok(Some((subject, Self::headers(event, lease)?, bytes::Bytes::from(event.payload.clone()))))
            })
            .collect::<Result<Vec<Option<(String, HeaderMap, bytes::Bytes)>>, SinkError>>()?;
        // Refuse an oversized event before publishing anything of the batch.
        for (message, event) in messages.iter().zip(events) {
            let Some((_, headers, payload)) = message else { continue };
            let size = message_size(headers, payload);
            if max > 0 && size > max {
                return Err(SinkError::permanent(format!(
                    "event {} ({}/{} v{}) is {size} bytes, more than the server's max payload of {max} bytes",
                    event.event_id, event.stream_type, event.stream_id, event.stream_version
                )));
            }
        }
        // One chain per stream, in the batch's order: each chain publishes its next
        // event only once the previous one is acknowledged, and all chains run at
        // once, so publishes are pipelined across streams and never within one.
        let mut chains: Vec<Vec<(String, HeaderMap, bytes::Bytes)>> = Vec::new();
        let mut chain_of: HashMap<(&str, &str), usize> = HashMap::new();
        for (message, event) in messages.iter_mut().zip(events) {
            let Some(message) = message.take() else { continue };
            let next = chains.len();
            let chain = *chain_of.entry((event.stream_type.as_str(), event.stream_id.as_str())).or_insert(next);
            if chain == next {
                chains.push(Vec::new());
            }
            chains[chain].push(message);
        }
        // The first failure ends every chain: a stream's later events stay unpublished
        // behind its failed one, and the relay retries from there.
        futures_util::future::try_join_all(chains.into_iter().map(|chain| async move {
            for (subject, headers, payload) in chain {
                let publish = PublishMessage::build().payload(payload).headers(headers);
                let ack = self.jetstream.send_publish(subject, publish).await.map_err(publish_error)?;
                ack.await.map_err(publish_error)?;
            }
            Ok::<(), SinkError>(())
        }))
        .await?;
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

#[cfg(test)]
mod tests {
    use super::subject_token;

    #[test]
    fn subject_tokens_are_valid_and_unambiguous() {
        assert_eq!(subject_token("Order"), "Order");
        assert_eq!(subject_token("2026.1 a_b"), "2026_2E1_20a_5Fb");
        assert_eq!(subject_token(""), "_");
        assert_eq!(subject_token("é*>"), "_C3_A9_2A_3E");
        let names = ["a.b", "a_2Eb", "a_b", "a b", "", "_", "a\nb", "a\u{0}b", "ü"];
        let tokens: std::collections::HashSet<String> = names.iter().map(|name| subject_token(name)).collect();
        assert_eq!(tokens.len(), names.len(), "two names share a token");
        for token in &tokens {
            assert!(!token.is_empty());
            assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
        }
    }
}
