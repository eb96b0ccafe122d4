//! The command line with the application's own types registered; see [`App`].

use std::ffi::OsString;
use std::fmt::Debug;
use std::process::ExitCode;

use es_core::rehydrate::Loaded;
use es_core::{Aggregate, RehydrateError, StoredEvent};

/// What is wrong with a stream when it is decoded and folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FoldProblem {
    /// `decode_failed`, `version_mismatch`, `nondeterministic_replay`.
    pub(crate) kind: &'static str,
    /// The version of the event concerned, when one is.
    pub(crate) version: Option<u64>,
    /// What is wrong, in words.
    pub(crate) detail: String,
}

/// An aggregate type registered with an [`App`], with its type erased.
pub(crate) trait Registered: Send + Sync {
    /// The stream type its streams are stored under.
    fn stream_type(&self) -> &'static str;
    /// Decodes and folds `events` strictly, from a fresh state; with `determinism`,
    /// twice, comparing the states.
    fn check(&self, stream_id: &str, events: &[StoredEvent], determinism: bool) -> Result<(), FoldProblem>;
    /// The state after each event, as `Debug` text, up to the first failure.
    fn replay(&self, stream_id: &str, events: &[StoredEvent]) -> (Vec<String>, Option<FoldProblem>);
}

struct Aggregated<A>(std::marker::PhantomData<fn() -> A>);

fn fold_problem(error: &RehydrateError) -> FoldProblem {
    let (kind, version) = match error {
        RehydrateError::VersionMismatch { found, .. } => ("version_mismatch", Some(*found)),
        RehydrateError::WrongStream { version, .. } => ("version_mismatch", Some(*version)),
        RehydrateError::Decode { version, .. } => ("decode_failed", Some(*version)),
        _ => ("decode_failed", None),
    };
    FoldProblem { kind, version, detail: error.to_string() }
}

fn fold<A: Aggregate>(stream_id: &str, events: &[StoredEvent]) -> Result<Loaded<A>, FoldProblem> {
    let mut loaded = Loaded::<A>::new(stream_id);
    for event in events {
        loaded.fold(event.clone()).map_err(|error| fold_problem(&error))?;
    }
    Ok(loaded)
}

impl<A: Aggregate + PartialEq + Debug + 'static> Registered for Aggregated<A> {
    fn stream_type(&self) -> &'static str {
        A::stream_type()
    }

    fn check(&self, stream_id: &str, events: &[StoredEvent], determinism: bool) -> Result<(), FoldProblem> {
        let first = fold::<A>(stream_id, events)?;
        if determinism {
            // Fresh decodes of the same rows: a state that differs came from `apply`
            // or `Default`, not from the data.
            let second = fold::<A>(stream_id, events)?;
            if first.state() != second.state() {
                return Err(FoldProblem {
                    kind: "nondeterministic_replay",
                    version: Some(first.version()),
                    detail: format!(
                        "folding the stream twice gave different states: an apply handler (or Default) is not pure; first {:?}, then {:?}",
                        first.state(),
                        second.state()
                    ),
                });
            }
        }
        Ok(())
    }

    fn replay(&self, stream_id: &str, events: &[StoredEvent]) -> (Vec<String>, Option<FoldProblem>) {
        let mut loaded = Loaded::<A>::new(stream_id);
        let mut states = Vec::with_capacity(events.len());
        for event in events {
            if let Err(error) = loaded.fold(event.clone()) {
                return (states, Some(fold_problem(&error)));
            }
            states.push(format!("{:?}", loaded.state()));
        }
        (states, None)
    }
}

/// The command line with the application's own types registered: an admin binary of
/// the user's that can also decode events, rehydrate streams strictly, check that
/// replays are deterministic and print replays.
///
/// ```no_run
/// use es::{aggregate, Aggregate, Event};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Serialize, Deserialize, Event)]
/// struct Deposited { amount: u64 }
///
/// #[aggregate]
/// #[derive(Debug, Default, PartialEq)]
/// struct Account { balance: u64 }
///
/// #[aggregate]
/// impl Aggregate for Account {
///     type Event = Deposited;
///     fn apply(&mut self, event: &Deposited) { self.balance += event.amount; }
/// }
///
/// // src/bin/admin.rs
/// fn main() -> std::process::ExitCode {
///     es_cli::App::new().aggregate::<Account>().run()
/// }
/// ```
///
/// It takes every command and flag of `es`, and more: `verify --decode` decodes every
/// event of a registered type and folds each stream strictly (unknown event types,
/// schema versions newer than the code, payloads that do not decode and failing
/// upcasters are problems, with stream, version and event type), `verify
/// --determinism` also folds each stream a second time from fresh decodes and compares
/// the states, and `replay <STREAM>` prints the state after each event.
#[derive(Default)]
pub struct App {
    pub(crate) aggregates: Vec<Box<dyn Registered>>,
}

impl Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("aggregates", &self.stream_types()).finish()
    }
}

impl App {
    /// The command line with no types registered yet (then it is the plain `es`).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an aggregate: its streams are decoded by `verify --decode` and can
    /// be replayed. `PartialEq` lets `verify --determinism` compare two folds, `Debug`
    /// lets `replay` print the states.
    #[must_use]
    pub fn aggregate<A: Aggregate + PartialEq + Debug + 'static>(mut self) -> Self {
        self.aggregates.push(Box::new(Aggregated::<A>(std::marker::PhantomData)));
        self
    }

    /// The stream types registered.
    #[must_use]
    pub fn stream_types(&self) -> Vec<&'static str> {
        self.aggregates.iter().map(|a| a.stream_type()).collect()
    }

    pub(crate) fn registered(&self, stream_type: &str) -> Option<&dyn Registered> {
        self.aggregates.iter().find(|a| a.stream_type() == stream_type).map(AsRef::as_ref)
    }

    /// Runs with the process's arguments and returns the exit code.
    #[must_use]
    pub fn run(self) -> ExitCode {
        self.run_with(std::env::args_os())
    }

    /// Runs with `args` (the first is the program name) and returns the exit code.
    pub fn run_with(self, args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
        crate::run_app(&self, args)
    }
}
