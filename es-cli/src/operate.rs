//! `es outbox` and `es projections`: what is stuck, how far behind, and the actions
//! that unstick it.

use std::io::{BufRead, IsTerminal, Write};

use es_core::admin::Admin;
use es_core::relay::Outbox;
use serde::Serialize;

use crate::args::{OutboxAction, ProjectionsAction, RequeueArgs, ResetArgs, SkipArgs};
use crate::error::{Failure, Outcome};
use crate::table::{Table, cell, human_duration, print_json};

fn io(error: &std::io::Error) -> Failure {
    Failure::Store(format!("cannot write the output: {error}"))
}

fn now_micros() -> i64 {
    es_core::Timestamp::from_system_time(std::time::SystemTime::now()).as_unix_micros()
}

/// `es outbox …`: the store is opened for writing only for `requeue` and `skip`.
pub async fn outbox<S: Outbox>(
    store: &S,
    action: &OutboxAction,
    json: bool,
    out: &mut impl Write,
) -> Result<Outcome, Failure> {
    match action {
        OutboxAction::Status => status(store, json, out).await,
        OutboxAction::Parked => parked(store, json, out).await,
        OutboxAction::Requeue(args) => requeue(store, args, json, out).await,
        OutboxAction::Skip(args) => skip(store, args, json, out).await,
    }
}

async fn status<S: Outbox>(store: &S, json: bool, out: &mut impl Write) -> Result<Outcome, Failure> {
    let status = store.status().await.map_err(|e| Failure::store("reading the outbox", &e))?;
    let lag = status.oldest_pending.map(|oldest| now_micros().saturating_sub(oldest.as_unix_micros()).max(0));
    if json {
        #[derive(Serialize)]
        struct Status {
            pending: u64,
            retrying: u64,
            parked: usize,
            oldest_pending: Option<String>,
            lag_seconds: Option<f64>,
        }
        #[allow(clippy::cast_precision_loss, reason = "seconds for people and dashboards")]
        let lag_seconds = lag.map(|micros| micros as f64 / 1e6);
        let value = Status {
            pending: status.pending,
            retrying: status.retrying,
            parked: status.parked.len(),
            oldest_pending: status.oldest_pending.map(|t| t.to_string()),
            lag_seconds,
        };
        print_json(out, &value).map_err(|e| io(&e))?;
    } else {
        let mut table = Table::new(vec!["PENDING", "RETRYING", "PARKED", "OLDEST PENDING", "LAG"]);
        table.row(vec![
            status.pending.to_string(),
            status.retrying.to_string(),
            status.parked.len().to_string(),
            status.oldest_pending.map_or_else(|| "-".into(), |t| t.to_string()),
            lag.map_or_else(|| "-".into(), human_duration),
        ]);
        table.print(out).map_err(|e| io(&e))?;
        if !status.parked.is_empty() {
            eprintln!("parked rows halt their streams: see them with `es outbox parked`");
        }
    }
    Ok(Outcome::Clean)
}

#[derive(Serialize)]
struct ParkedLine<'a> {
    position: u64,
    stream_type: &'a str,
    stream_id: &'a str,
    attempts: u32,
    last_error: &'a str,
}

async fn parked<S: Outbox>(store: &S, json: bool, out: &mut impl Write) -> Result<Outcome, Failure> {
    let status = store.status().await.map_err(|e| Failure::store("reading the outbox", &e))?;
    if json {
        let lines: Vec<ParkedLine<'_>> = status
            .parked
            .iter()
            .map(|p| ParkedLine {
                position: p.position,
                stream_type: &p.stream_type,
                stream_id: &p.stream_id,
                attempts: p.attempts,
                last_error: &p.last_error,
            })
            .collect();
        print_json(out, &lines).map_err(|e| io(&e))?;
    } else if status.parked.is_empty() {
        eprintln!("no parked rows");
    } else {
        let mut table = Table::new(vec!["POSITION", "STREAM", "ATTEMPTS", "LAST ERROR"]);
        for p in &status.parked {
            table.row(vec![
                p.position.to_string(),
                format!("{}/{}", cell(&p.stream_type), cell(&p.stream_id)),
                p.attempts.to_string(),
                cell(&p.last_error),
            ]);
        }
        table.print(out).map_err(|e| io(&e))?;
        eprintln!(
            "put one back in line with `es outbox requeue <POSITION>`, or give up on it with `es outbox skip <POSITION> --reason TEXT`"
        );
    }
    Ok(Outcome::Clean)
}

fn not_parked(position: u64) -> Failure {
    Failure::Refused(format!(
        "position {position} is not a parked outbox row (delivered, skipped, or never parked); list them with `es outbox parked`"
    ))
}

async fn requeue<S: Outbox>(
    store: &S,
    args: &RequeueArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<Outcome, Failure> {
    let positions = if let Some(position) = args.position {
        vec![position]
    } else {
        let status = store.status().await.map_err(|e| Failure::store("reading the outbox", &e))?;
        status.parked.iter().map(|p| p.position).collect()
    };
    let mut requeued = Vec::new();
    for position in positions {
        if store.requeue(position).await.map_err(|e| Failure::store(&format!("requeueing position {position}"), &e))? {
            requeued.push(position);
        } else if args.position.is_some() {
            return Err(not_parked(position));
        }
    }
    if json {
        print_json(out, &serde_json::json!({ "requeued": requeued })).map_err(|e| io(&e))?;
    } else if requeued.is_empty() {
        eprintln!("no parked rows to requeue");
    } else {
        for position in &requeued {
            writeln!(out, "requeued {position}").map_err(|e| io(&e))?;
        }
        eprintln!("the relay delivers them on its next pass");
    }
    Ok(Outcome::Clean)
}

async fn skip<S: Outbox>(store: &S, args: &SkipArgs, json: bool, out: &mut impl Write) -> Result<Outcome, Failure> {
    if args.reason.trim().is_empty() {
        return Err(Failure::Usage("--reason is empty: say why the row is given up on; it is kept with it".into()));
    }
    let skipped = store
        .skip(args.position, args.reason.clone())
        .await
        .map_err(|e| Failure::store(&format!("skipping position {}", args.position), &e))?;
    if !skipped {
        return Err(not_parked(args.position));
    }
    if json {
        print_json(out, &serde_json::json!({ "skipped": args.position })).map_err(|e| io(&e))?;
    } else {
        writeln!(out, "skipped {}", args.position).map_err(|e| io(&e))?;
        eprintln!("its stream flows on; the reason is kept in the skipped table");
    }
    Ok(Outcome::Clean)
}

/// `es projections …`.
pub async fn projections<S: Admin>(
    store: &S,
    action: &ProjectionsAction,
    json: bool,
    out: &mut impl Write,
) -> Result<Outcome, Failure> {
    match action {
        ProjectionsAction::Status => projections_status(store, json, out).await,
        ProjectionsAction::Reset(args) => reset(store, args, json, out).await,
    }
}

async fn projections_status<S: Admin>(store: &S, json: bool, out: &mut impl Write) -> Result<Outcome, Failure> {
    let states = store.projections().await.map_err(|e| Failure::store("reading the checkpoints", &e))?;
    let now = now_micros();
    let lag = |oldest: Option<es_core::Timestamp>| oldest.map(|t| now.saturating_sub(t.as_unix_micros()).max(0));
    if json {
        #[derive(Serialize)]
        struct Line<'a> {
            name: &'a str,
            position: i64,
            cursor: String,
            updated_at: String,
            behind: u64,
            oldest_unseen: Option<String>,
            lag_seconds: Option<f64>,
            skipped: u64,
        }
        let lines: Vec<Line<'_>> = states
            .iter()
            .map(|s| {
                #[allow(clippy::cast_precision_loss, reason = "seconds for people and dashboards")]
                let lag_seconds = lag(s.oldest_unseen).map(|micros| micros as f64 / 1e6);
                Line {
                    name: &s.name,
                    position: s.position,
                    cursor: if s.commit == 0 { s.position.to_string() } else { format!("{}:{}", s.commit, s.position) },
                    updated_at: s.updated_at.to_string(),
                    behind: s.behind,
                    oldest_unseen: s.oldest_unseen.map(|t| t.to_string()),
                    lag_seconds,
                    skipped: s.skipped,
                }
            })
            .collect();
        print_json(out, &lines).map_err(|e| io(&e))?;
    } else if states.is_empty() {
        eprintln!("no projection has a checkpoint yet");
    } else {
        let mut table = Table::new(vec!["PROJECTION", "POSITION", "BEHIND", "LAG", "SKIPPED", "UPDATED AT"]);
        for s in &states {
            table.row(vec![
                cell(&s.name),
                s.position.to_string(),
                s.behind.to_string(),
                lag(s.oldest_unseen).map_or_else(|| "-".into(), human_duration),
                s.skipped.to_string(),
                s.updated_at.to_string(),
            ]);
        }
        table.print(out).map_err(|e| io(&e))?;
    }
    Ok(Outcome::Clean)
}

/// Asks on the terminal; refuses when there is no terminal to ask on.
fn confirm(question: &str) -> Result<bool, Failure> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::Refused(format!("{question}: no terminal to confirm on; pass --yes to do it anyway")));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer).map_err(|e| Failure::Usage(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

async fn reset<S: Admin>(store: &S, args: &ResetArgs, json: bool, out: &mut impl Write) -> Result<Outcome, Failure> {
    let states = store.projections().await.map_err(|e| Failure::store("reading the checkpoints", &e))?;
    let Some(state) = states.iter().find(|s| s.name == args.name) else {
        return Err(Failure::Refused(format!(
            "no projection named {:?} has a checkpoint; list them with `es projections`",
            args.name
        )));
    };
    let question = format!(
        "reset projection {} (at position {}): its read model is emptied and rebuilt from the first event on its next run",
        args.name, state.position
    );
    if !args.yes && !confirm(&question)? {
        return Err(Failure::Refused(format!("projection {} left as it was", args.name)));
    }
    let deleted = store
        .reset_projection(&args.name)
        .await
        .map_err(|e| Failure::store(&format!("resetting projection {}", args.name), &e))?;
    if !deleted {
        return Err(Failure::Refused(format!("projection {} had no checkpoint any more", args.name)));
    }
    if json {
        print_json(out, &serde_json::json!({ "reset": args.name })).map_err(|e| io(&e))?;
    } else {
        writeln!(out, "reset {}", args.name).map_err(|e| io(&e))?;
        eprintln!("its runner empties the read model and starts from the first event on its next pass");
    }
    Ok(Outcome::Clean)
}
