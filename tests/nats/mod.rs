//! Connecting the NATS suites to the test server, a JetStream stream of its own per
//! test, and messages as a plain consumer sees them.

#![allow(dead_code, reason = "each test crate uses a different part")]

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;

pub const NATS_URL_ENV: &str = "ES_TEST_NATS_URL";

pub fn nats_url() -> String {
    std::env::var(NATS_URL_ENV).unwrap_or_else(|_| "127.0.0.1:4222".to_owned())
}

/// A client for the test server; panics with directions when there is none.
pub async fn connect() -> async_nats::Client {
    connect_to(&nats_url()).await
}

/// A client for the server at `url` (the test server, or a proxy in front of it).
pub async fn connect_to(url: &str) -> async_nats::Client {
    let connecting = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(3)).connect(url);
    match tokio::time::timeout(Duration::from_secs(5), connecting).await {
        Ok(Ok(client)) => client,
        outcome => panic!(
            "cannot reach the NATS server at {url} ({}). These tests need NATS with JetStream: \
             start one with `nats-server -js -a 127.0.0.1 -p 4222`, or point {NATS_URL_ENV} at one",
            match outcome {
                Ok(Err(error)) => error.to_string(),
                _ => "connection timed out".to_owned(),
            }
        ),
    }
}

/// A JetStream stream of its own for one test, capturing `<prefix>.>`; deleted on drop,
/// also when the test fails.
pub struct TestStream {
    pub name: String,
    pub prefix: String,
    pub stream: stream::Stream,
}

impl TestStream {
    pub async fn create(client: &async_nats::Client) -> Self {
        let name = format!("es_test_{}", uuid::Uuid::now_v7().simple());
        let prefix = name.clone();
        let stream = jetstream::new(client.clone())
            .create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![format!("{prefix}.>")],
                storage: stream::StorageType::Memory,
                // The default, stated: redeliveries within it are dropped.
                duplicate_window: Duration::from_mins(2),
                // A stream a crashed run leaves behind empties itself.
                max_age: Duration::from_hours(1),
                ..stream::Config::default()
            })
            .await
            .unwrap_or_else(|error| {
                panic!("cannot create JetStream stream {name} (is JetStream enabled, `-js`?): {error}")
            });
        Self { name, prefix, stream }
    }

    pub async fn stored_messages(&self) -> u64 {
        self.stream.get_info().await.unwrap().state.messages
    }

    /// Every message of the stream, in stream order, through an ordered pull consumer.
    pub async fn read_all(&self) -> Vec<Received> {
        let count = self.stored_messages().await;
        let consumer = self
            .stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::All,
                ..consumer::pull::OrderedConfig::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let mut received = Vec::new();
        while (received.len() as u64) < count {
            let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
                .await
                .unwrap_or_else(|_| panic!("the consumer stalled after {} of {count} messages", received.len()))
                .expect("the consumer ended")
                .unwrap();
            received.push(Received::from_message(&message));
        }
        // Nothing beyond what the stream said it holds.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), messages.next()).await.is_err(),
            "the consumer saw more than the {count} stored messages"
        );
        received
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop cannot await; delete through a connection of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                if let Ok(Ok(client)) =
                    tokio::time::timeout(Duration::from_secs(5), async_nats::connect(nats_url())).await
                {
                    let _ = jetstream::new(client).delete_stream(&name).await;
                }
            });
        })
        .join();
    }
}

/// One message as a consumer sees it.
#[derive(Debug)]
pub struct Received {
    pub subject: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Received {
    pub fn from_message(message: &jetstream::Message) -> Self {
        let headers = message
            .headers
            .as_ref()
            .map(|headers| {
                headers
                    .iter()
                    .map(|(name, values)| {
                        let name: &str = name.as_ref();
                        assert_eq!(values.len(), 1, "header {name} set more than once");
                        (name.to_owned(), values[0].as_str().to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            subject: message.subject.to_string(),
            headers,
            body: String::from_utf8(message.payload.to_vec()).unwrap(),
        }
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap_or_else(|| panic!("message on {} lacks header {name}", self.subject))
    }
}
