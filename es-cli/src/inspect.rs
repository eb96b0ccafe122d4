//! `es streams`, `es stream` and `es tail`: looking inside the store.

use std::io::Write;
use std::time::Duration;

use es_core::admin::{Admin, StreamQuery};
use es_core::{Cursor, EventStore, StoredEvent};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::app::App;
use crate::args::{ReplayArgs, StreamArgs, StreamsArgs, TailArgs};
use crate::error::{Failure, Outcome};
use crate::table::{Table, cell, print_json};

fn io(error: &std::io::Error) -> Failure {
    Failure::Store(format!("cannot write the output: {error}"))
}

/// A stream, as `es streams --json` prints it.
#[derive(Debug, Serialize)]
struct StreamLine {
    stream_type: String,
    stream_id: String,
    version: i64,
    events: u64,
    last_position: i64,
    last_occurred_at: String,
}

/// `es streams`.
pub async fn streams<S: Admin>(
    store: &S,
    args: &StreamsArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<Outcome, Failure> {
    let after = args
        .after
        .as_deref()
        .map(|after| {
            after.split_once('/').map(|(t, i)| (t.to_owned(), i.to_owned())).ok_or_else(|| {
                Failure::Usage(format!("--after {after:?}: give the stream as TYPE/ID, as `es streams` prints it"))
            })
        })
        .transpose()?;
    let limit = args.limit as usize;
    // One more than asked: whether another page follows is then known, not guessed.
    let mut page = store
        .streams(StreamQuery { stream_type: args.stream_type.clone(), stream_id: None, after, limit: limit + 1 })
        .await
        .map_err(|e| Failure::store("listing the streams", &e))?;
    let more = page.len() > limit;
    page.truncate(limit);
    let next = more.then(|| page.last().map(|s| format!("{}/{}", s.stream_type, s.stream_id))).flatten();
    let lines: Vec<StreamLine> = page
        .into_iter()
        .map(|s| StreamLine {
            last_occurred_at: s.last_occurred_at.to_string(),
            stream_type: s.stream_type,
            stream_id: s.stream_id,
            version: s.version,
            events: s.events,
            last_position: s.last_position,
        })
        .collect();
    if json {
        #[derive(Serialize)]
        struct Page<'a> {
            streams: &'a [StreamLine],
            /// Pass as `--after` for the next page; null on the last one.
            next: Option<&'a str>,
        }
        print_json(out, &Page { streams: &lines, next: next.as_deref() }).map_err(|e| io(&e))?;
    } else {
        let mut table = Table::new(vec!["TYPE", "ID", "VERSION", "EVENTS", "LAST POSITION", "LAST EVENT AT"]);
        for line in &lines {
            table.row(vec![
                cell(&line.stream_type),
                cell(&line.stream_id),
                line.version.to_string(),
                line.events.to_string(),
                line.last_position.to_string(),
                line.last_occurred_at.clone(),
            ]);
        }
        if table.is_empty() {
            eprintln!("no streams{}", args.stream_type.as_ref().map(|t| format!(" of type {t}")).unwrap_or_default());
        } else {
            table.print(out).map_err(|e| io(&e))?;
        }
        if let Some(next) = &next {
            eprintln!("more streams follow: es streams --after '{next}'");
        }
    }
    Ok(Outcome::Clean)
}

/// An event with its envelope, as `es stream` and `es tail` print it in JSON.
#[derive(Debug, Serialize)]
struct EventLine<'a> {
    cursor: String,
    position: u64,
    stream_type: &'a str,
    stream_id: &'a str,
    version: u64,
    event_id: String,
    event_type: &'a str,
    schema_version: u32,
    occurred_at: String,
    metadata: &'a es_core::Metadata,
    payload: Payload<'a>,
}

/// The payload as JSON when it is (it always is when written by the library), else
/// as the text stored.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Payload<'a> {
    Json(&'a RawValue),
    Text(&'a str),
}

fn cursor_text(cursor: Cursor) -> String {
    if cursor.commit == 0 { cursor.position.to_string() } else { format!("{}:{}", cursor.commit, cursor.position) }
}

fn event_line(event: &StoredEvent) -> EventLine<'_> {
    EventLine {
        cursor: cursor_text(event.cursor),
        position: event.cursor.position,
        stream_type: &event.stream_type,
        stream_id: &event.stream_id,
        version: event.stream_version,
        event_id: event.event_id.to_string(),
        event_type: &event.event_type,
        schema_version: event.schema_version,
        occurred_at: event.occurred_at.to_string(),
        metadata: &event.metadata,
        payload: serde_json::from_str::<&RawValue>(&event.payload).map_or(Payload::Text(&event.payload), Payload::Json),
    }
}

fn metadata_text(metadata: &es_core::Metadata) -> String {
    if metadata.is_empty() { "-".into() } else { serde_json::to_string(metadata).unwrap_or_default() }
}

/// The stream type of stream `id`: the one given, or the only one it exists under.
async fn stream_type_of<S: Admin>(store: &S, id: &str, given: Option<&String>) -> Result<String, Failure> {
    if let Some(stream_type) = given {
        return Ok(stream_type.clone());
    }
    let found = store
        .streams(StreamQuery { stream_id: Some(id.to_owned()), limit: 10, ..StreamQuery::default() })
        .await
        .map_err(|e| Failure::store("looking for the stream", &e))?;
    match found.as_slice() {
        [] => Err(Failure::Refused(format!("no stream with id {id:?}; list them with `es streams`"))),
        [one] => Ok(one.stream_type.clone()),
        several => {
            let types: Vec<&str> = several.iter().map(|s| s.stream_type.as_str()).collect();
            Err(Failure::Usage(format!(
                "stream id {id:?} exists under several types ({}); choose one with --type",
                types.join(", ")
            )))
        }
    }
}

/// `es stream`.
pub async fn stream<S: Admin + EventStore>(
    store: &S,
    args: &StreamArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<Outcome, Failure> {
    let stream_type = stream_type_of(store, &args.id, args.stream_type.as_ref()).await?;
    let events = store
        .read_stream(&stream_type, &args.id, args.from)
        .await
        .map_err(|e| Failure::store(&format!("reading stream {stream_type}/{}", args.id), &e))?;
    let events: Vec<&StoredEvent> = events.iter().filter(|e| args.to.is_none_or(|to| e.stream_version <= to)).collect();
    if events.is_empty() && args.from <= 1 && args.stream_type.is_some() {
        return Err(Failure::Refused(format!(
            "no stream {stream_type}/{}; list them with `es streams --type {stream_type}`",
            args.id
        )));
    }
    if json {
        let lines: Vec<EventLine<'_>> = events.iter().map(|e| event_line(e)).collect();
        print_json(out, &lines).map_err(|e| io(&e))?;
    } else {
        let mut table = Table::new(vec![
            "VERSION",
            "POSITION",
            "OCCURRED AT",
            "EVENT TYPE",
            "SCHEMA",
            "EVENT ID",
            "METADATA",
            "PAYLOAD",
        ]);
        for event in &events {
            table.row(vec![
                event.stream_version.to_string(),
                cursor_text(event.cursor),
                event.occurred_at.to_string(),
                cell(&event.event_type),
                event.schema_version.to_string(),
                event.event_id.to_string(),
                cell(&metadata_text(&event.metadata)),
                cell(&event.payload),
            ]);
        }
        if table.is_empty() {
            eprintln!("stream {stream_type}/{} has no events in that range", args.id);
        } else {
            table.print(out).map_err(|e| io(&e))?;
        }
    }
    Ok(Outcome::Clean)
}

/// `replay`: the state after each event, with the application's aggregate.
pub async fn replay<S: Admin + EventStore>(
    store: &S,
    app: &App,
    args: &ReplayArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<Outcome, Failure> {
    let stream_type = stream_type_of(store, &args.id, args.stream_type.as_ref()).await?;
    let Some(registered) = app.registered(&stream_type) else {
        return Err(Failure::Usage(format!(
            "no aggregate of stream type {stream_type} is registered with this binary (it knows {}); register it with `App::aggregate`",
            app.stream_types().join(", ")
        )));
    };
    let events = store
        .read_stream(&stream_type, &args.id, 1)
        .await
        .map_err(|e| Failure::store(&format!("reading stream {stream_type}/{}", args.id), &e))?;
    if events.is_empty() {
        return Err(Failure::Refused(format!("no stream {stream_type}/{}", args.id)));
    }
    let (states, failure) = registered.replay(&args.id, &events);
    if json {
        #[derive(Serialize)]
        struct Step<'a> {
            version: u64,
            event_type: &'a str,
            state: &'a str,
        }
        let steps: Vec<Step<'_>> = events
            .iter()
            .zip(&states)
            .map(|(e, state)| Step { version: e.stream_version, event_type: &e.event_type, state })
            .collect();
        print_json(out, &steps).map_err(|e| io(&e))?;
    } else {
        let mut table = Table::new(vec!["VERSION", "EVENT TYPE", "STATE AFTER IT"]);
        for (event, state) in events.iter().zip(&states) {
            table.row(vec![event.stream_version.to_string(), cell(&event.event_type), cell(state)]);
        }
        table.print(out).map_err(|e| io(&e))?;
    }
    match failure {
        None => Ok(Outcome::Clean),
        Some(failure) => {
            eprintln!("replay stopped: {}", failure.detail);
            Ok(Outcome::Problems)
        }
    }
}

/// Reads a cursor as `es tail` prints it: `POSITION`, or `COMMIT:POSITION`.
pub fn parse_cursor(text: &str, commit_order_keys: bool) -> Result<Cursor, Failure> {
    let bad = || {
        Failure::Usage(format!(
            "--from {text:?}: give a cursor as `es tail` prints it ({})",
            if commit_order_keys { "COMMIT:POSITION on PostgreSQL" } else { "a position on SQLite" }
        ))
    };
    match text.split_once(':') {
        Some((commit, position)) if commit_order_keys => Ok(Cursor {
            commit: commit.trim().parse().map_err(|_| bad())?,
            position: position.trim().parse().map_err(|_| bad())?,
        }),
        None if !commit_order_keys => Ok(Cursor::at_position(text.trim().parse().map_err(|_| bad())?)),
        // A bare position is not enough on PostgreSQL: the log is ordered by commit
        // first, and a position alone does not say where its commit stands.
        _ => Err(bad()),
    }
}

/// `es tail`.
pub async fn tail<S: EventStore>(
    store: &S,
    args: &TailArgs,
    commit_order_keys: bool,
    json: bool,
    out: &mut impl Write,
) -> Result<Outcome, Failure> {
    let mut after =
        args.from.as_deref().map(|from| parse_cursor(from, commit_order_keys)).transpose()?.unwrap_or(Cursor::START);
    let mut remaining = args.limit.unwrap_or(u64::MAX);
    let poll = Duration::from_millis(args.poll_ms.max(10));
    while remaining > 0 {
        let page = usize::try_from(remaining.min(500)).unwrap_or(500);
        let events = store.read_all(after, page).await.map_err(|e| Failure::store("reading the log", &e))?;
        for event in &events {
            if json {
                serde_json::to_writer(&mut *out, &event_line(event)).map_err(|e| io(&std::io::Error::other(e)))?;
                writeln!(out).map_err(|e| io(&e))?;
            } else {
                writeln!(
                    out,
                    "{:<10}  {}  {}/{} v{}  {} (schema {})  {}",
                    cursor_text(event.cursor),
                    event.occurred_at,
                    cell(&event.stream_type),
                    cell(&event.stream_id),
                    event.stream_version,
                    cell(&event.event_type),
                    event.schema_version,
                    cell(&event.payload)
                )
                .map_err(|e| io(&e))?;
            }
        }
        // Each page is flushed, so that `es tail --follow | grep` shows lines as they come.
        out.flush().map_err(|e| io(&e))?;
        remaining -= events.len() as u64;
        if let Some(last) = events.last() {
            after = last.cursor;
        }
        if events.len() < page {
            if !args.follow {
                break;
            }
            tokio::time::sleep(poll).await;
        }
    }
    Ok(Outcome::Clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_as_printed() {
        assert_eq!(parse_cursor("42", false).ok(), Some(Cursor::at_position(42)));
        assert_eq!(parse_cursor("7:42", true).ok(), Some(Cursor { commit: 7, position: 42 }));
        assert!(parse_cursor("42", true).is_err());
        assert!(parse_cursor("7:42", false).is_err());
        assert!(parse_cursor("x", false).is_err());
    }
}
