//! Running the real `es` binary, and filling stores for it to look at.

#![allow(dead_code, reason = "each test crate uses a different part")]

use std::process::{Command, Output};

use es_core::{ExpectedVersion, Metadata, NewEvent, Timestamp};

/// The result of one run of `es`.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with both outputs unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "exit code\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// The stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs `es` with `args`, with no `ES_DATABASE` from the environment and stdin closed.
pub fn es(args: &[&str]) -> Run {
    let output: Output = Command::new(env!("CARGO_BIN_EXE_es"))
        .args(args)
        .env_remove("ES_DATABASE")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the es binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// `n` deposit events, ready to append.
pub fn deposits(n: u64, first_amount: u64) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent {
            event_id: uuid::Uuid::now_v7(),
            event_type: "Deposited".into(),
            schema_version: 1,
            occurred_at: Timestamp::from_unix_micros(1_767_225_600_000_000 + i64::try_from(i).unwrap()),
            metadata: Metadata::default(),
            payload: format!("{{\"amount\":{}}}", first_amount + i),
        })
        .collect()
}

/// The streams every store in these tests starts with, in append order:
/// Account/a-1 (3 events), Account/a-2 (2), Order/o-1 (1): positions 1..=6.
pub const STREAMS: [(&str, &str, u64); 3] = [("Account", "a-1", 3), ("Account", "a-2", 2), ("Order", "o-1", 1)];

/// Appends [`STREAMS`] through any store.
pub async fn seed(store: &impl es_core::EventStore) {
    for (stream_type, stream_id, n) in STREAMS {
        store.append(stream_type, stream_id, ExpectedVersion::NoStream, deposits(n, 1)).await.unwrap();
    }
}
