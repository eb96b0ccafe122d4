//! `es verify`: every check of a store's integrity, in bounded memory.
//!
//! Two keyset scans do the bulk of the work: the global log in position order (the
//! values of every row) and the rows in stream order (versions 1..n, each after the
//! one before it in the log). Each holds one page at a time and carries only the
//! previous row across pages. The remaining checks (repeated ids, outbox rows,
//! checkpoints, snapshots) are queries that return only the offending rows.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use std::collections::BTreeSet;

use es_core::admin::{Admin, RawEvent, StreamQuery, StreamRow};
use es_core::{EventStore, Metadata};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde::Serialize;

use crate::app::App;
use crate::args::VerifyArgs;
use crate::error::{Failure, Outcome};
use crate::table::cell;

/// One thing wrong with the store.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// What kind of problem (`version_gap`, `invalid_payload`, …).
    pub kind: &'static str,
    /// The stream type, where the problem is in a stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_type: Option<String>,
    /// The stream id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    /// The stream version concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// The global position concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    /// The projection concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projection: Option<String>,
    /// What is wrong, in words.
    pub detail: String,
}

impl Problem {
    fn in_stream(kind: &'static str, stream_type: &str, stream_id: &str, version: i64, position: i64) -> Self {
        Self {
            kind,
            stream_type: Some(stream_type.to_owned()),
            stream_id: Some(stream_id.to_owned()),
            version: Some(version),
            position: Some(position),
            projection: None,
            detail: String::new(),
        }
    }

    fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Where the problem is, for a person.
    fn location(&self) -> String {
        let mut parts = Vec::new();
        if let Some(projection) = &self.projection {
            parts.push(format!("projection {}", cell(projection)));
        } else if let (Some(stream_type), Some(stream_id)) = (&self.stream_type, &self.stream_id) {
            parts.push(format!("stream {}/{}", cell(stream_type), cell(stream_id)));
            if let Some(version) = self.version {
                parts.push(format!("version {version}"));
            }
        }
        if let Some(position) = self.position {
            parts.push(format!("(position {position})"));
        }
        parts.join(" ")
    }
}

/// What a verification found and how much it read.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The problems listed in detail (at most `--max-problems`).
    pub problems: Vec<Problem>,
    /// Every problem found, also those past the listing's limit.
    pub problems_found: u64,
    /// Event rows checked.
    pub events: u64,
    /// Streams checked.
    pub streams: u64,
    /// Seconds the checks took.
    pub seconds: f64,
    /// Event rows read per second, over both scans.
    pub rows_per_second: f64,
    #[serde(skip)]
    limit: usize,
}

impl Report {
    /// Adds what another part of the run found.
    fn absorb(&mut self, other: Report) {
        self.events += other.events;
        self.streams += other.streams;
        self.problems_found += other.problems_found - other.problems.len() as u64;
        for problem in other.problems {
            self.add(problem);
        }
    }

    fn add(&mut self, problem: Problem) {
        self.problems_found += 1;
        if self.problems.len() < self.limit {
            self.problems.push(problem);
        }
    }
}

/// A progress bar on stderr when it is a terminal, nothing otherwise.
fn progress(length: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("verifying [{bar:25}] {human_pos}/{human_len} rows  {rate}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} rows/s", state.per_sec());
            })
            .progress_chars("=> "),
    );
    bar
}

/// Runs every check and prints the report; exits 1 when anything is wrong. With
/// `--decode`, the streams of `app`'s aggregates are also decoded and folded.
pub async fn run<S: Admin + EventStore>(
    store: &S,
    app: &App,
    args: &VerifyArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<Outcome, Failure> {
    let started = Instant::now();
    let mut report = Report { limit: args.max_problems, ..Report::default() };
    let page = args.page_size as usize;
    let head = store.head().await.map_err(|e| Failure::store("reading the head of the log", &e))?;
    // Positions start at 1 and rarely have gaps: the head is a good estimate of the
    // row count, and costs no count of a large table.
    let estimate = u64::try_from(head.position).unwrap_or(0);

    // The two scans run side by side, each on a connection of its own (the stores
    // keep at least two), with one progress bar for both.
    let bar = progress(estimate.saturating_mul(2));
    let mut stream_report = Report { limit: args.max_problems, ..Report::default() };
    let (log, streams) =
        tokio::join!(scan_log(store, page, &bar, &mut report), scan_streams(store, page, &bar, &mut stream_report));
    bar.finish_and_clear();
    log?;
    let (stream_rows, stream_types) = streams?;
    report.absorb(stream_report);
    check_duplicate_ids(store, &mut report).await?;
    check_outbox(store, page, &mut report).await?;
    check_checkpoints(store, head.position, &mut report).await?;
    check_snapshots(store, page, &mut report).await?;
    if args.decode || args.determinism {
        check_decoding(store, app, page, args.determinism, &mut report).await?;
        for unknown in stream_types.iter().filter(|t| app.registered(t).is_none()) {
            eprintln!("streams of type {} were not decoded: no aggregate of that type is registered", cell(unknown));
        }
    }

    let elapsed = started.elapsed().max(Duration::from_micros(1));
    report.seconds = elapsed.as_secs_f64();
    #[allow(clippy::cast_precision_loss, reason = "a rate for people, not an exact count")]
    {
        report.rows_per_second = (report.events + stream_rows) as f64 / report.seconds;
    }
    print(&report, json, out).map_err(|e| Failure::Store(format!("cannot write the report: {e}")))?;
    Ok(if report.problems_found == 0 { Outcome::Clean } else { Outcome::Problems })
}

fn print(report: &Report, json: bool, out: &mut impl Write) -> std::io::Result<()> {
    if json {
        return crate::table::print_json(out, report);
    }
    for problem in &report.problems {
        writeln!(out, "{:<24} {}: {}", problem.kind, problem.location(), cell(&problem.detail))?;
    }
    let unlisted = report.problems_found - report.problems.len() as u64;
    if unlisted > 0 {
        writeln!(out, "… and {unlisted} more problems (raise --max-problems to list them)")?;
    }
    let verdict = match report.problems_found {
        0 => "no problems".to_owned(),
        1 => "1 problem".to_owned(),
        n => format!("{n} problems"),
    };
    writeln!(
        out,
        "verified {} events in {} streams in {:.2}s ({:.0} rows/s): {verdict}",
        report.events, report.streams, report.seconds, report.rows_per_second
    )
}

/// The global log in position order: every value of every row. The next page is
/// read while this one is checked.
async fn scan_log<S: Admin>(store: &S, page: usize, bar: &ProgressBar, report: &mut Report) -> Result<(), Failure> {
    let fetch = |after| async move {
        store.scan_events(after, page).await.map_err(|e| Failure::store("reading the events", &e))
    };
    let mut rows = fetch(i64::MIN).await?;
    loop {
        let after = (rows.len() == page).then(|| rows.last().map(|row| row.position)).flatten();
        let next = async {
            match after {
                Some(after) => fetch(after).await.map(Some),
                None => Ok(None),
            }
        };
        // `join!` polls the fetch first, which hands the query to its connection;
        // the checks then run here meanwhile.
        let check = async {
            for row in &rows {
                check_row(row, report);
            }
            report.events += rows.len() as u64;
            bar.inc(rows.len() as u64);
        };
        let (next, ()) = tokio::join!(next, check);
        match next? {
            Some(next) => rows = next,
            None => return Ok(()),
        }
    }
}

/// The checks of one row's values.
fn check_row(row: &RawEvent, report: &mut Report) {
    let problem = |kind| Problem::in_stream(kind, &row.stream_type, &row.stream_id, row.stream_version, row.position);
    for wrong in &row.wrong_types {
        report.add(problem("wrong_column_type").detail(wrong.clone()));
    }
    if row.position < 1 {
        report.add(problem("invalid_position").detail(format!("position {} (positions start at 1)", row.position)));
    }
    if row.stream_version < 1 {
        report.add(
            problem("invalid_version").detail(format!("stream version {} (versions start at 1)", row.stream_version)),
        );
    }
    if row.event_id.len() != 16 {
        report.add(problem("invalid_event_id").detail(format!("event id is {} bytes, not 16", row.event_id.len())));
    }
    if u32::try_from(row.schema_version).is_err() {
        report.add(
            problem("invalid_schema_version").detail(format!("schema version {} out of range", row.schema_version)),
        );
    }
    if row.event_type.is_empty() {
        report.add(problem("invalid_event_type").detail("empty event type"));
    }
    if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(&row.payload) {
        report.add(
            problem("invalid_payload").detail(format!("payload of `{}` is not valid JSON: {error}", row.event_type)),
        );
    }
    if let Some(metadata) = &row.metadata
        && let Err(error) = serde_json::from_str::<Metadata>(metadata)
    {
        report.add(problem("invalid_metadata").detail(format!("metadata does not decode: {error}")));
    }
}

/// The rows in stream order: each stream's versions are 1..n, each after the one
/// before it in the log. Returns the rows read and the stream types met (a handful,
/// whatever the size of the store).
async fn scan_streams<S: Admin>(
    store: &S,
    page: usize,
    bar: &ProgressBar,
    report: &mut Report,
) -> Result<(u64, BTreeSet<String>), Failure> {
    let fetch = |after| async move {
        store.scan_stream_versions(after, page).await.map_err(|e| Failure::store("reading the streams", &e))
    };
    let mut previous: Option<StreamRow> = None;
    let mut types = BTreeSet::new();
    let mut read = 0_u64;
    let mut rows = fetch(None).await?;
    loop {
        let after = if rows.len() == page { rows.last().cloned() } else { None };
        let next = async {
            match after {
                Some(after) => fetch(Some(after)).await.map(Some),
                None => Ok(None),
            }
        };
        // As for the log: the next page is read while this one is checked.
        let check = async {
            read += rows.len() as u64;
            bar.inc(rows.len() as u64);
            for row in rows {
                check_succession(previous.as_ref(), &row, report);
                if previous.as_ref().is_none_or(|p| p.stream_type != row.stream_type) {
                    types.insert(row.stream_type.clone());
                }
                previous = Some(row);
            }
        };
        let (next, ()) = tokio::join!(next, check);
        match next? {
            Some(next) => rows = next,
            None => return Ok((read, types)),
        }
    }
}

/// Decodes and folds every stream of every registered aggregate, one stream in
/// memory at a time.
async fn check_decoding<S: Admin + EventStore>(
    store: &S,
    app: &App,
    page: usize,
    determinism: bool,
    report: &mut Report,
) -> Result<(), Failure> {
    for stream_type in app.stream_types() {
        let Some(registered) = app.registered(stream_type) else { continue };
        let mut after = None;
        loop {
            let query =
                StreamQuery { stream_type: Some(stream_type.to_owned()), after, limit: page, ..StreamQuery::default() };
            let streams = store
                .streams(query)
                .await
                .map_err(|e| Failure::store(&format!("listing the streams of type {stream_type}"), &e))?;
            let full = streams.len() == page;
            after = streams.last().map(|s| (s.stream_type.clone(), s.stream_id.clone()));
            for stream in streams {
                let problem = |kind, version: Option<u64>, position: Option<u64>, detail: String| Problem {
                    kind,
                    stream_type: Some(stream_type.to_owned()),
                    stream_id: Some(stream.stream_id.clone()),
                    version: version.and_then(|v| i64::try_from(v).ok()),
                    position: position.and_then(|p| i64::try_from(p).ok()),
                    projection: None,
                    detail,
                };
                let events = match store.read_stream(stream_type, &stream.stream_id, 1).await {
                    Ok(events) => events,
                    // The row-level checks above already name what is wrong with it.
                    Err(error) => {
                        report.add(problem("unreadable_stream", None, None, error.to_string()));
                        continue;
                    }
                };
                if let Err(failure) = registered.check(&stream.stream_id, &events, determinism) {
                    let position = failure
                        .version
                        .and_then(|v| events.iter().find(|e| e.stream_version == v))
                        .map(|e| e.cursor.position);
                    report.add(problem(failure.kind, failure.version, position, failure.detail));
                }
            }
            if !full {
                break;
            }
        }
    }
    Ok(())
}

/// Checks `row` against the row before it in stream order.
fn check_succession(previous: Option<&StreamRow>, row: &StreamRow, report: &mut Report) {
    let same_stream = previous.filter(|p| p.stream_type == row.stream_type && p.stream_id == row.stream_id);
    let problem = |kind| Problem::in_stream(kind, &row.stream_type, &row.stream_id, row.stream_version, row.position);
    let Some(before) = same_stream else {
        report.streams += 1;
        // Versions below 1 are reported with the row's values.
        if row.stream_version > 1 {
            report.add(problem("version_gap").detail(format!(
                "expected version 1, got {}: the stream's first versions are missing",
                row.stream_version
            )));
        }
        return;
    };
    if row.stream_version == before.stream_version {
        report.add(problem("version_repeated").detail(format!(
            "version {} is stored twice (positions {} and {})",
            row.stream_version, before.position, row.position
        )));
    } else if row.stream_version != before.stream_version + 1 && before.stream_version >= 1 {
        let (first, last) = (before.stream_version + 1, row.stream_version - 1);
        let missing = if first == last {
            format!("version {first} is missing")
        } else {
            format!("versions {first}..={last} are missing")
        };
        report.add(
            problem("version_gap").detail(format!("expected version {first}, got {}: {missing}", row.stream_version)),
        );
    }
    // A repeat is one problem, whichever of its rows the order of the scan puts first.
    if row.stream_version != before.stream_version && row.position <= before.position {
        report.add(problem("position_out_of_order").detail(format!(
            "version {} is at position {}, before version {} at position {}",
            row.stream_version, row.position, before.stream_version, before.position
        )));
    }
}

async fn check_duplicate_ids<S: Admin>(store: &S, report: &mut Report) -> Result<(), Failure> {
    let duplicates = store
        .duplicate_event_ids(report.limit.max(1))
        .await
        .map_err(|e| Failure::store("looking for repeated event ids", &e))?;
    for duplicate in duplicates {
        let id = uuid::Uuid::from_slice(&duplicate.event_id)
            .map_or_else(|_| format!("{:02x?}", duplicate.event_id), |id| id.to_string());
        let first = duplicate.rows.first();
        for row in duplicate.rows.iter().skip(1) {
            let first = first.map_or_else(String::new, |f| {
                format!(" as {}/{} version {} (position {})", f.stream_type, f.stream_id, f.stream_version, f.position)
            });
            report.add(
                Problem::in_stream(
                    "duplicate_event_id",
                    &row.stream_type,
                    &row.stream_id,
                    row.stream_version,
                    row.position,
                )
                .detail(format!("event id {id} is also stored{first}")),
            );
        }
    }
    Ok(())
}

async fn check_outbox<S: Admin>(store: &S, page: usize, report: &mut Report) -> Result<(), Failure> {
    let mut after = i64::MIN;
    loop {
        let rows =
            store.orphaned_outbox_rows(after, page).await.map_err(|e| Failure::store("checking the outbox", &e))?;
        let Some(last) = rows.last() else { break };
        after = last.position;
        let full = rows.len() == page;
        for row in rows {
            let detail = match &row.event_stream {
                None => format!("outbox row at position {} points at no event", row.position),
                Some((stream_type, stream_id)) => format!(
                    "outbox row at position {} names this stream, but the event there belongs to {stream_type}/{stream_id}",
                    row.position
                ),
            };
            report.add(Problem {
                kind: "orphaned_outbox_row",
                stream_type: Some(row.stream_type),
                stream_id: Some(row.stream_id),
                version: None,
                position: Some(row.position),
                projection: None,
                detail,
            });
        }
        if !full {
            break;
        }
    }
    Ok(())
}

async fn check_checkpoints<S: Admin>(store: &S, head: i64, report: &mut Report) -> Result<(), Failure> {
    let projections = store.projections().await.map_err(|e| Failure::store("reading the checkpoints", &e))?;
    for projection in projections {
        let problem = |detail: String| Problem {
            kind: "checkpoint_ahead",
            stream_type: None,
            stream_id: None,
            version: None,
            position: Some(projection.position),
            projection: Some(projection.name.clone()),
            detail,
        };
        if projection.position > head {
            report.add(problem(format!(
                "checkpoint at position {} is past the head of the log at position {head}",
                projection.position
            )));
        } else if projection.position < 0 {
            report.add(problem(format!("checkpoint at negative position {}", projection.position)));
        }
        if let Some(id) = &projection.event_id
            && id.len() != 16
        {
            report.add(Problem {
                kind: "invalid_checkpoint",
                ..problem(format!("event id is {} bytes, not 16", id.len()))
            });
        }
    }
    Ok(())
}

async fn check_snapshots<S: Admin>(store: &S, page: usize, report: &mut Report) -> Result<(), Failure> {
    let mut after = None;
    loop {
        let rows = store
            .snapshots_ahead(after.clone(), page)
            .await
            .map_err(|e| Failure::store("checking the snapshots", &e))?;
        let Some(last) = rows.last() else { break };
        after = Some((last.stream_type.clone(), last.stream_id.clone()));
        let full = rows.len() == page;
        for row in rows {
            report.add(Problem {
                kind: "snapshot_ahead",
                stream_type: Some(row.stream_type),
                stream_id: Some(row.stream_id),
                version: Some(row.snapshot_version),
                position: None,
                projection: None,
                detail: format!(
                    "snapshot at version {} is past the stream's last version {}",
                    row.snapshot_version, row.stream_version
                ),
            });
        }
        if !full {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(stream_id: &str, version: i64, position: i64) -> StreamRow {
        StreamRow { stream_type: "Account".into(), stream_id: stream_id.into(), stream_version: version, position }
    }

    fn kinds(rows: &[StreamRow]) -> Vec<&'static str> {
        let mut report = Report { limit: 100, ..Report::default() };
        let mut previous: Option<&StreamRow> = None;
        for row in rows {
            check_succession(previous, row, &mut report);
            previous = Some(row);
        }
        report.problems.iter().map(|p| p.kind).collect()
    }

    #[test]
    fn continuous_streams_pass() {
        assert!(kinds(&[row("a", 1, 1), row("a", 2, 3), row("b", 1, 2)]).is_empty());
    }

    #[test]
    fn gaps_repeats_and_disorder_are_found() {
        assert_eq!(kinds(&[row("a", 1, 1), row("a", 3, 2)]), ["version_gap"]);
        assert_eq!(kinds(&[row("a", 2, 1)]), ["version_gap"]);
        assert_eq!(kinds(&[row("a", 1, 1), row("a", 1, 2)]), ["version_repeated"]);
        assert_eq!(kinds(&[row("a", 1, 5), row("a", 2, 4)]), ["position_out_of_order"]);
    }
}
