//! The `es` operator command line, as a library: [`run`] parses the arguments and
//! runs a command; the `es` binary is a thin `main` over it.
//!
//! Commands: `verify`, `streams`, `stream`, `tail`, `outbox`, `projections`,
//! `migrate`; see `es --help` and the README's "Operating" section. Data goes to
//! stdout, everything else to stderr. Exit codes: 0 all well, 1 problems found or the
//! action refused, 2 usage, connection or schema errors.

#![forbid(unsafe_code)]

mod app;
pub mod args;
mod error;
mod inspect;
mod operate;
mod store;
mod table;
pub mod verify;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

pub use crate::app::App;
use crate::args::{Cli, Command, MigrateArgs, OutboxAction, ProjectionsAction};
pub use crate::error::{Failure, Outcome};
use crate::store::{Access, Store, Target, with_store};

/// Runs the command line with the process's arguments and returns its exit code.
#[must_use]
pub fn main() -> ExitCode {
    run(std::env::args_os())
}

/// Runs the command line with `args` (the first is the program name).
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    run_app(&App::new(), args)
}

pub(crate) fn run_app(app: &App, args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints help and version on stdout with exit 0, mistakes on
            // stderr with exit 2.
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let outcome = runtime.block_on(execute(app, &cli, &mut out));
    let flushed = out.flush();
    match outcome {
        Ok(outcome) => {
            if let Err(error) = flushed {
                // A closed pipe (`es tail | head`) is how a reader says it has enough.
                if error.kind() != std::io::ErrorKind::BrokenPipe {
                    eprintln!("error: cannot write the output: {error}");
                    return ExitCode::from(2);
                }
            }
            outcome.into()
        }
        Err(failure) => {
            eprintln!("error: {failure}");
            failure.exit_code()
        }
    }
}

/// What the plain binary says when asked for what needs the application's types.
fn needs_types(what: &str) -> Failure {
    Failure::Usage(format!(
        "{what} needs the application's event types, which the plain es binary does not know: build an admin binary with `es_cli::App::new().aggregate::<YourAggregate>().run()` (see the README's \"Operating\" section)"
    ))
}

/// Runs one parsed command with `app`'s types registered, writing its data to `out`.
pub async fn execute(app: &App, cli: &Cli, out: &mut impl Write) -> Result<Outcome, Failure> {
    let target = Target::parse(cli.db.as_deref())?;
    let json = cli.json;
    match &cli.command {
        Command::Verify(args) if (args.decode || args.determinism) && app.aggregates.is_empty() => {
            return Err(needs_types("verify --decode"));
        }
        Command::Replay(_) if app.aggregates.is_empty() => return Err(needs_types("replay")),
        _ => {}
    }
    if let Command::Migrate(args) = &cli.command {
        return migrate(&target, &cli.prefix, args, json, out).await;
    }
    let access = match &cli.command {
        Command::Outbox(args) if matches!(args.action, Some(OutboxAction::Requeue(_) | OutboxAction::Skip(_))) => {
            Access::Write
        }
        Command::Projections(args) if matches!(args.action, Some(ProjectionsAction::Reset(_))) => Access::Write,
        _ => Access::Read,
    };
    let store = store::open(&target, &cli.prefix, access).await?;
    let commit_order_keys = !matches!(store, Store::Sqlite(_));
    match &cli.command {
        Command::Verify(args) => with_store!(&store, |s| verify::run(s, app, args, json, out).await),
        Command::Replay(args) => with_store!(&store, |s| inspect::replay(s, app, args, json, out).await),
        Command::Streams(args) => with_store!(&store, |s| inspect::streams(s, args, json, out).await),
        Command::Stream(args) => with_store!(&store, |s| inspect::stream(s, args, json, out).await),
        Command::Tail(args) => with_store!(&store, |s| inspect::tail(s, args, commit_order_keys, json, out).await),
        Command::Outbox(args) => {
            let action = args.action.as_ref().unwrap_or(&OutboxAction::Status);
            with_store!(&store, |s| operate::outbox(s, action, json, out).await)
        }
        Command::Projections(args) => {
            let action = args.action.as_ref().unwrap_or(&ProjectionsAction::Status);
            with_store!(&store, |s| operate::projections(s, action, json, out).await)
        }
        Command::Migrate(_) => unreachable!("handled above"),
    }
}

/// `es migrate`: creates or upgrades the schema, or with `--check` only tells.
async fn migrate(
    target: &Target,
    prefix: &str,
    args: &MigrateArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<Outcome, Failure> {
    let before = match store::schema_status(target, prefix).await {
        Ok(status) => status,
        // A SQLite file that does not exist yet is created by `es migrate`.
        Err(_) if !args.check && matches!(target, Target::Sqlite(path) if !std::path::Path::new(path).exists()) => {
            es_core::admin::SchemaStatus { current: 0, latest: 0 }
        }
        Err(failure) => return Err(failure),
    };
    if before.is_newer() {
        store::require_current(target, before)?;
    }
    let report = |out: &mut dyn Write, status: es_core::admin::SchemaStatus, message: &str| {
        if json {
            let value = serde_json::json!({ "current": status.current, "latest": status.latest, "upgrade_pending": status.upgrade_pending() });
            serde_json::to_writer_pretty(&mut *out, &value).map_err(std::io::Error::other)?;
            writeln!(out)
        } else {
            writeln!(out, "{message}")
        }
    };
    let io = |e: std::io::Error| Failure::Store(format!("cannot write the output: {e}"));
    if args.check {
        let message = if before.upgrade_pending() {
            format!(
                "schema at version {}, version {} available: an upgrade is pending; apply it with `es migrate`",
                before.current, before.latest
            )
        } else {
            format!("schema at version {}, up to date", before.current)
        };
        report(out, before, &message).map_err(io)?;
        return Ok(if before.upgrade_pending() { Outcome::Problems } else { Outcome::Clean });
    }
    // Opening for writing creates or migrates the schema, as a service's own open would.
    let opened = match target {
        Target::Sqlite(path) => es_core::sqlite::SqliteOptions::new(path).table_prefix(prefix).open().await.map(drop),
        #[cfg(feature = "postgres")]
        Target::Postgres(url) => es_core::postgres::PgOptions::new(url.clone())
            .table_prefix(prefix)
            .max_connections(1)
            .open()
            .await
            .map(drop),
        #[cfg(not(feature = "postgres"))]
        Target::Postgres(_) => return Err(Failure::Usage("this es was built without PostgreSQL support".into())),
    };
    opened.map_err(|e| Failure::Connection(format!("cannot migrate {}: {e}", target.name())))?;
    let after = store::schema_status(target, prefix).await?;
    let message = if after.current == before.current {
        format!("schema at version {}, up to date", after.current)
    } else {
        format!("schema migrated from version {} to {}", before.current, after.current)
    };
    report(out, after, &message).map_err(io)?;
    Ok(Outcome::Clean)
}
