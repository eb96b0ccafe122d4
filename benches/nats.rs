//! The JetStream sink against a raw async-nats loop publishing the same messages, in
//! one run.
//!
//! The sink keeps per-stream order itself: it publishes each stream of a batch as a
//! chain (the next event once the previous one is acknowledged), all chains at once:
//! pipelined across streams and never within one. The raw side is what
//! the sink did before, and the fastest a client can go: publish the whole batch, then
//! await the acknowledgements. It gives no order under partial failure, so the ratio is
//! the price of that guarantee.
//!
//! - **50 streams**: batches of 256 events spread over 50 streams (chains of about 5),
//!   the relay's common case.
//! - **one stream**: batches of 256 events of one stream (one chain of 256), the worst
//!   case.
//!
//! Both sides publish fresh event ids each round (the duplicate window would drop
//! repeats) to one in-memory JetStream stream, with the same headers and payloads.
//!
//! Run: `cargo bench --features nats --bench nats` (add `-- --quick` for a smoke run,
//! `-- --rounds R` to change the number of rounds). The server is `ES_TEST_NATS_URL`,
//! or `127.0.0.1:4222`, with JetStream enabled.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use es::nats::JetStreamSink;
use es::sink::Sink;
use es::{Cursor, StoredEvent};
use uuid::Uuid;

mod common;

use common::{BoxError, Pair, arg, new_event};

const BATCH: usize = 256;

/// `batches` batches of `BATCH` events over `streams` streams, interleaved.
fn workload(batches: usize, streams: usize) -> Vec<Vec<StoredEvent>> {
    let mut versions = vec![0u64; streams];
    let mut position = 0;
    (0..batches)
        .map(|_| {
            (0..BATCH)
                .map(|i| {
                    let stream = i % streams;
                    versions[stream] += 1;
                    position += 1;
                    let new = new_event(versions[stream]);
                    StoredEvent {
                        event_id: Uuid::now_v7(),
                        stream_type: "Account".into(),
                        stream_id: format!("acc-{stream:04}"),
                        stream_version: versions[stream],
                        cursor: Cursor::at_position(position),
                        event_type: new.event_type,
                        schema_version: new.schema_version,
                        occurred_at: new.occurred_at,
                        metadata: new.metadata,
                        payload: new.payload,
                    }
                })
                .collect()
        })
        .collect()
}

/// The raw side: every message of the batch published, then every acknowledgement
/// awaited.
async fn raw_deliver(jetstream: &jetstream::Context, prefix: &str, events: &[StoredEvent]) -> Result<(), BoxError> {
    let mut acks = Vec::with_capacity(events.len());
    for event in events {
        let mut headers = HeaderMap::new();
        let id = event.event_id.to_string();
        headers.insert("Nats-Msg-Id", id.as_str());
        headers.insert("Es-Event-Id", id.as_str());
        headers.insert("Es-Stream-Type", event.stream_type.as_str());
        headers.insert("Es-Stream-Id", event.stream_id.as_str());
        headers.insert("Es-Stream-Version", event.stream_version.to_string().as_str());
        headers.insert("Es-Event-Type", event.event_type.as_str());
        headers.insert("Es-Schema-Version", event.schema_version.to_string().as_str());
        headers.insert("Es-Occurred-At", event.occurred_at.as_unix_micros().to_string().as_str());
        headers.insert("Es-Position", event.cursor.position.to_string().as_str());
        headers.insert("Es-Lease-Generation", "1");
        let publish = jetstream::message::PublishMessage::build()
            .payload(bytes::Bytes::from(event.payload.clone()))
            .headers(headers);
        acks.push(jetstream.send_publish(format!("{prefix}.{}", event.stream_type), publish).await?);
    }
    for ack in acks {
        ack.await?;
    }
    Ok(())
}

async fn round(
    sink: &JetStreamSink,
    jetstream: &jetstream::Context,
    prefix: &str,
    use_es: bool,
    batches: usize,
    streams: usize,
) -> Result<Duration, BoxError> {
    let work = workload(batches, streams);
    let start = Instant::now();
    for batch in &work {
        if use_es {
            sink.deliver(batch, es::LeaseGeneration::new(1)).await?;
        } else {
            raw_deliver(jetstream, prefix, batch).await?;
        }
    }
    Ok(start.elapsed())
}

fn main() -> Result<(), BoxError> {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = arg("--rounds", if quick { 3 } else { 7 });
    let batches = if quick { 4 } else { 40 };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let url = std::env::var("ES_TEST_NATS_URL").unwrap_or_else(|_| "127.0.0.1:4222".to_owned());
        let client = async_nats::connect(&url).await?;
        let jetstream = jetstream::new(client.clone());
        let name = format!("es_bench_{}", Uuid::now_v7().simple());
        jetstream
            .create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![format!("{name}.>")],
                storage: stream::StorageType::Memory,
                max_age: Duration::from_hours(1),
                ..stream::Config::default()
            })
            .await?;
        let sink = JetStreamSink::new(client.clone(), name.clone());
        let (mut many, mut one) = (Pair::default(), Pair::default());
        for r in 0..rounds {
            let es_first = r % 2 == 0;
            many.measure(es_first, |use_es| round(&sink, &jetstream, &name, use_es, batches, 50)).await?;
            one.measure(es_first, |use_es| round(&sink, &jetstream, &name, use_es, batches, 1)).await?;
        }
        let _ = jetstream.delete_stream(&name).await;
        let server = client.server_info();
        println!(
            "NATS {} JetStream (memory storage), one client, {rounds} interleaved rounds, medians; batches of {BATCH}",
            server.version
        );
        many.report(
            "publish, 50 streams per batch (per-stream chains vs one pipelined batch)",
            batches * BATCH,
            "events",
        );
        one.report(
            "publish, one stream per batch (per-stream chains vs one pipelined batch)",
            batches * BATCH,
            "events",
        );
        Ok(())
    })
}
