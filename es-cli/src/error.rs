//! How a command fails, and the exit code each failure gives.

use std::process::ExitCode;

/// Why a command did not finish as asked. Each message says what went wrong, where,
/// and what to do next.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The arguments do not make sense (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The database cannot be reached or opened (exit 2).
    #[error("{0}")]
    Connection(String),
    /// The database's schema is missing, older or newer than this release's (exit 2).
    #[error("{0}")]
    Schema(String),
    /// A read or write failed on the way (exit 2).
    #[error("{0}")]
    Store(String),
    /// The action was refused, or what was asked for does not exist (exit 1).
    #[error("{0}")]
    Refused(String),
}

impl Failure {
    /// The exit code: 1 for a refusal, 2 for everything else.
    #[must_use]
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Refused(_) => ExitCode::from(1),
            _ => ExitCode::from(2),
        }
    }

    /// A store error met while doing `what`.
    #[must_use]
    pub fn store(what: &str, error: &es_core::StoreError) -> Self {
        let hint = match error {
            es_core::StoreError::Corrupt { .. } => "; run `es verify` to list every damaged row",
            _ => "",
        };
        Self::Store(format!("{what}: {error}{hint}"))
    }
}

/// How a command that ran ends: all well, or with problems found (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Clean,
    /// Exit 1: problems found, or nothing found.
    Problems,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Clean => ExitCode::SUCCESS,
            Outcome::Problems => ExitCode::from(1),
        }
    }
}
