//! The command line's shape: every command, flag and help text.

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  all well
  1  problems found (verify, migrate --check), nothing found, or the action was refused
  2  usage, connection or schema errors";

/// Operate an `es` event store: verify it, look inside it, unstick its outbox and
/// projections, migrate its schema.
///
/// Data goes to stdout (as aligned tables, or JSON with --json); progress, hints and
/// errors go to stderr. Nothing is written unless the command changes something.
#[derive(Debug, Parser)]
#[command(name = "es", version, after_long_help = EXIT_CODES, after_help = EXIT_CODES)]
pub struct Cli {
    /// The store: a SQLite file path or a `postgres://` URL (TLS through the URL's
    /// `sslmode`, as the store supports it).
    #[arg(long, env = "ES_DATABASE", value_name = "PATH|URL", global = true)]
    pub db: Option<String>,

    /// The prefix of the store's tables.
    #[arg(long, default_value = "es_", global = true)]
    pub prefix: String,

    /// Print data as JSON, for scripts (`tail` prints one JSON object per line).
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every stream, the global log, the outbox, the checkpoints and the
    /// snapshots; list each problem, then a summary.
    ///
    /// Checks that stream versions are 1..n with no gap or repeat and follow the
    /// log's order, that event ids are unique, that every payload and metadata value
    /// is valid JSON of the right shape, that every outbox row points at its event,
    /// that no projection checkpoint is past the head and no snapshot past its
    /// stream. Reads page by page in bounded memory; shows a progress bar when stderr
    /// is a terminal. Exits 1 when anything is wrong.
    ///
    /// Example: es verify --db app.db
    Verify(VerifyArgs),

    /// List streams: type, id, version, event count, last time.
    ///
    /// Paged: when more streams follow, stderr says how to get the next page.
    ///
    /// Example: es streams --type Account --limit 50
    Streams(StreamsArgs),

    /// Print the events of one stream with their envelopes.
    ///
    /// Example: es stream acct-42 --type Account --from 10 --to 20
    Stream(StreamArgs),

    /// Print the global log in commit order; with --follow, keep printing new
    /// commits until interrupted.
    ///
    /// Each line shows the event's cursor; pass it to --from to resume after it.
    ///
    /// Example: es tail --from 1200 --follow
    Tail(TailArgs),

    /// The outbox: counts and lag, parked rows, and putting them back in line.
    ///
    /// Example: es outbox parked
    Outbox(OutboxArgs),

    /// Projections: each checkpoint, lag in events and time, skipped events; reset.
    ///
    /// Example: es projections reset balances --yes
    Projections(ProjectionsArgs),

    /// Print the state after each event of a stream (an admin binary built with
    /// `es_cli::App`, which knows the aggregate, only).
    ///
    /// Example: admin replay acct-42 --type Account
    Replay(ReplayArgs),

    /// Create or upgrade the schema; with --check, only tell whether an upgrade is
    /// pending (exit 1 if so).
    ///
    /// Example: es migrate --check
    Migrate(MigrateArgs),
}

/// `es verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Rows read per query.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,
    /// Problems listed in detail; the rest are only counted.
    #[arg(long, default_value_t = 1000)]
    pub max_problems: usize,
    /// Also decode every event of the registered aggregates and fold each stream
    /// strictly (an admin binary built with `es_cli::App` only).
    #[arg(long)]
    pub decode: bool,
    /// With --decode, fold each stream twice from fresh decodes and compare the
    /// states (an admin binary built with `es_cli::App` only).
    #[arg(long)]
    pub determinism: bool,
}

/// `es streams`.
#[derive(Debug, Args)]
pub struct StreamsArgs {
    /// Only streams of this type.
    #[arg(long = "type", value_name = "TYPE")]
    pub stream_type: Option<String>,
    /// Start after this stream, as `TYPE/ID` (the next page's start is printed).
    #[arg(long, value_name = "TYPE/ID")]
    pub after: Option<String>,
    /// Streams per page.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
}

/// `es stream`.
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// The stream id.
    pub id: String,
    /// The stream type; needed only when the id exists under several types.
    #[arg(long = "type", value_name = "TYPE")]
    pub stream_type: Option<String>,
    /// The first version to print.
    #[arg(long, default_value_t = 1)]
    pub from: u64,
    /// The last version to print.
    #[arg(long)]
    pub to: Option<u64>,
}

/// `es tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Start after this cursor, as printed by `es tail` (`POSITION` on SQLite,
    /// `COMMIT:POSITION` on PostgreSQL). Default: the beginning.
    #[arg(long, value_name = "CURSOR")]
    pub from: Option<String>,
    /// Keep printing new commits until interrupted.
    #[arg(long, short)]
    pub follow: bool,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
    /// With --follow, how often to look for new commits, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
}

/// `es outbox`.
#[derive(Debug, Args)]
pub struct OutboxArgs {
    /// What to do (default: the status).
    #[command(subcommand)]
    pub action: Option<OutboxAction>,
}

/// What `es outbox` does.
#[derive(Debug, Subcommand)]
pub enum OutboxAction {
    /// Pending, retrying and parked counts, and the oldest pending age (the lag).
    Status,
    /// List parked rows with their attempts and last error.
    Parked,
    /// Put a parked row (or all of them) back in line, attempts reset; the relay
    /// delivers it on its next pass.
    ///
    /// Example: es outbox requeue 1234
    Requeue(RequeueArgs),
    /// Give up on a parked row for good, recording why; its stream flows on.
    ///
    /// Example: es outbox skip 1234 --reason "payload fixed downstream"
    Skip(SkipArgs),
}

/// `es outbox requeue`.
#[derive(Debug, Args)]
pub struct RequeueArgs {
    /// The parked row's position (see `es outbox parked`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub position: Option<u64>,
    /// Requeue every parked row.
    #[arg(long)]
    pub all: bool,
}

/// `es outbox skip`.
#[derive(Debug, Args)]
pub struct SkipArgs {
    /// The parked row's position (see `es outbox parked`).
    pub position: u64,
    /// Why, kept with the skipped row.
    #[arg(long)]
    pub reason: String,
}

/// `es projections`.
#[derive(Debug, Args)]
pub struct ProjectionsArgs {
    /// What to do (default: the status).
    #[command(subcommand)]
    pub action: Option<ProjectionsAction>,
}

/// What `es projections` does.
#[derive(Debug, Subcommand)]
pub enum ProjectionsAction {
    /// Each projection's checkpoint, lag in events and time, and skipped events.
    Status,
    /// Delete a projection's checkpoint: its runner empties the read model and
    /// rebuilds it from the first event on its next pass.
    ///
    /// Asks for confirmation unless --yes.
    ///
    /// Example: es projections reset balances --yes
    Reset(ResetArgs),
}

/// `es projections reset`.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The projection's name (see `es projections`).
    pub name: String,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    pub yes: bool,
}

/// `es migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Change nothing; exit 1 if an upgrade is pending.
    #[arg(long)]
    pub check: bool,
}

/// `es replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The stream id.
    pub id: String,
    /// The stream type; needed only when the id exists under several types.
    #[arg(long = "type", value_name = "TYPE")]
    pub stream_type: Option<String>,
}
