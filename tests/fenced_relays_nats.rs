//! Relay processes frozen past their lease (SIGSTOP, SIGCONT) and killed (SIGKILL)
//! while publishing to NATS JetStream, with the successor's connection running
//! through a TCP proxy that loses one of its publishes: a plain JetStream consumer
//! then reads every event exactly once (the duplicate window drops the repeats) and
//! each stream in version order; the frozen relay's acknowledgement is refused and its
//! batch published again under a newer lease generation (`Es-Lease-Generation`). The
//! scenario is in `tests/fenced/mod.rs`; the server is the one `tests/nats/mod.rs`
//! names (feature `nats`).

mod fenced;
mod fencing;
mod nats;
mod support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use es::LeaseGeneration;
use es::nats::JetStreamSink;
use es::sqlite::SqliteStore;
use nats::{TestStream, connect, connect_to, nats_url};
use support::process::child_role;

const TEST: &str = "relays_frozen_and_killed_while_the_broker_loses_a_publish_keep_every_stream_in_order";
const URL_ENV: &str = "ES_FENCED_NATS_URL";
const PREFIX_ENV: &str = "ES_FENCED_NATS_PREFIX";

/// A TCP proxy in front of the NATS server that loses the `nth` publish with headers
/// (`HPUB`, what a JetStream publish is) on a subject under `prefix`, as a network or
/// a server failing over would, and forwards everything else untouched.
struct LossyProxy {
    address: SocketAddr,
    /// The `Es-Event-Id` of the lost publish, once it was lost.
    lost: Arc<Mutex<Option<String>>>,
}

impl LossyProxy {
    async fn start(prefix: String, nth: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let lost: Arc<Mutex<Option<String>>> = Arc::default();
        let publishes = Arc::new(AtomicU64::new(0));
        let upstream = nats_url().trim_start_matches("nats://").to_owned();
        let shared = (Arc::clone(&lost), publishes, Arc::new(prefix));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (lost, publishes, prefix) = (Arc::clone(&shared.0), Arc::clone(&shared.1), Arc::clone(&shared.2));
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else { return };
                    let (client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                    });
                    let _ = forward(client_read, &mut server_write, &prefix, nth, &publishes, &lost).await;
                });
            }
        });
        Self { address, lost }
    }
}

/// Copies the client's side of the protocol to the server, message by message,
/// leaving the chosen publish out.
async fn forward(
    client: tokio::net::tcp::OwnedReadHalf,
    server: &mut tokio::net::tcp::OwnedWriteHalf,
    prefix: &str,
    nth: u64,
    publishes: &AtomicU64,
    lost: &Mutex<Option<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client);
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        let words: Vec<&str> = text.split_whitespace().collect();
        let operation = words.first().map(|w| w.to_ascii_uppercase()).unwrap_or_default();
        // `PUB <subject> [reply] <size>`, `HPUB <subject> [reply] <header size> <total>`:
        // the body and its closing CRLF follow.
        let body = if operation == "PUB" || operation == "HPUB" {
            words.last().and_then(|size| size.parse::<usize>().ok()).map_or(0, |size| size + 2)
        } else {
            0
        };
        let mut payload = vec![0; body];
        reader.read_exact(&mut payload).await?;
        let ours = operation == "HPUB" && words.get(1).is_some_and(|subject| subject.starts_with(prefix));
        if ours && publishes.fetch_add(1, Ordering::SeqCst) + 1 == nth {
            let headers = String::from_utf8_lossy(&payload);
            let id = headers.lines().find_map(|l| l.strip_prefix("Es-Event-Id:")).map(|id| id.trim().to_owned());
            *lost.lock().unwrap() = Some(id.unwrap_or_default());
            continue;
        }
        server.write_all(&line).await?;
        server.write_all(&payload).await?;
    }
}

#[test]
#[allow(clippy::too_many_lines, reason = "one scenario, checked step by step")]
fn relays_frozen_and_killed_while_the_broker_loses_a_publish_keep_every_stream_in_order() {
    if let Some(dir) = child_role(fenced::CHILD) {
        let (url, prefix) = (std::env::var(URL_ENV).unwrap(), std::env::var(PREFIX_ENV).unwrap());
        return fenced::child(Path::new(&dir), || async move { JetStreamSink::new(connect_to(&url).await, prefix) });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let client = connect().await;
        let stream = TestStream::create(&client).await;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(fenced::database(dir.path())).await.unwrap();
        let events = fenced::seed(&store).await;

        // Every publish that reaches the server, repeats included, with its generation:
        // a core subscriber sees what the duplicate window then drops.
        let publishes: Arc<Mutex<Vec<(String, LeaseGeneration)>>> = Arc::default();
        let mut subscriber = client.subscribe(format!("{}.>", stream.prefix)).await.unwrap();
        client.flush().await.unwrap();
        let counting = {
            let publishes = Arc::clone(&publishes);
            tokio::spawn(async move {
                while let Some(message) = subscriber.next().await {
                    let headers = message.headers.as_ref().unwrap();
                    let id = headers.get("Es-Event-Id").unwrap().to_string();
                    let generation = headers.get("Es-Lease-Generation").unwrap().as_str().parse().unwrap();
                    publishes.lock().unwrap().push((id, LeaseGeneration::new(generation)));
                }
            })
        };

        // B's connection loses its 12th publish: in its second round of publishes, with
        // later events of other streams in flight.
        let proxy = LossyProxy::start(stream.prefix.clone(), 12).await;
        let (direct, through_proxy) = (nats_url(), proxy.address.to_string());
        let prefix = stream.prefix.clone();
        let configure_a = |mut command: std::process::Command| {
            command.env(URL_ENV, &direct).env(PREFIX_ENV, &prefix);
            command
        };
        let configure_b = |mut command: std::process::Command| {
            command.env(URL_ENV, &through_proxy).env(PREFIX_ENV, &prefix);
            command
        };
        let outcome =
            fenced::freeze_kill_and_take_over(TEST, dir.path(), &store, None, &configure_a, &configure_b, &configure_a)
                .await;
        fenced::assert_generations(&outcome, false);
        let lost = proxy.lost.lock().unwrap().clone().expect("the proxy never lost a publish");

        // A plain consumer reads each event once, each stream in version order.
        assert_eq!(stream.stored_messages().await, events.len() as u64, "JetStream must hold every event once");
        let received = stream.read_all().await;
        let by_id = fenced::by_id(&events);
        let in_order: Vec<es::StoredEvent> = received
            .iter()
            .map(|message| {
                let id: uuid::Uuid = message.header("Es-Event-Id").parse().unwrap();
                assert_eq!(message.header("Nats-Msg-Id"), id.to_string());
                let event = by_id.get(&id).unwrap_or_else(|| panic!("a message for unknown event {id}"));
                assert_eq!(message.header("Es-Stream-Version"), event.stream_version.to_string());
                (*event).clone()
            })
            .collect();
        assert_eq!(fencing::assert_complete_and_in_stream_order(&in_order, &events), 0, "repeats in the stream");
        let stored_generation: HashMap<String, LeaseGeneration> = received
            .iter()
            .map(|m| {
                (
                    m.header("Es-Event-Id").to_owned(),
                    LeaseGeneration::new(m.header("Es-Lease-Generation").parse().unwrap()),
                )
            })
            .collect();
        assert!(stored_generation.contains_key(&lost), "the lost publish {lost} was never published again");

        // The frozen batch was stored from A, under the generation it froze with, and
        // published again by a later holder, whose repeat the duplicate window dropped.
        client.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        counting.abort();
        let publishes = publishes.lock().unwrap();
        assert_eq!(outcome.held.len(), 8);
        for id in outcome.held.iter().map(uuid::Uuid::to_string) {
            assert_eq!(
                stored_generation[&id], outcome.frozen,
                "{id} was stored from a relay other than the frozen one"
            );
            let generations: HashSet<LeaseGeneration> =
                publishes.iter().filter(|(seen, _)| *seen == id).map(|(_, g)| *g).collect();
            assert!(generations.iter().any(|g| *g > outcome.frozen), "{id} was not published again after A froze");
        }
        println!("{} events, {} publishes reached the server; the proxy lost {lost}", events.len(), publishes.len());
    });
}
