//! What the SQL backends (SQLite and PostgreSQL) share: the checked readers of stored
//! values, the schema version check and the table prefix check. Compiled only with one
//! of them.

use crate::store::StoreError;

/// The two reads of one stream from a version on, `[from_start, from_later]`, for
/// `columns` of table `events`, with the backend's placeholders for stream type, stream
/// id and first version (`params`).
///
/// Rows below version 1 are never written by the library; they are read too, to be
/// refused, or they would hide from every reader of the stream. A read from the start
/// binds [`StreamRange::first_bound`] (the lowest integer) and gets every row, those
/// below 1 first, in one index range that comes out ordered. A read from a later
/// version (after a snapshot) needs a second range for the rows below 1, merged: with
/// the two ranges in one statement, PostgreSQL sorts the whole result, which costs more
/// than the fold, so the one-range statement is kept for the common case.
pub(crate) fn stream_reads(columns: &str, events: &str, params: [&str; 3]) -> [String; 2] {
    let [stream_type, stream_id, first] = params;
    let range = format!(
        "SELECT {columns} FROM {events} WHERE stream_type = {stream_type} AND stream_id = {stream_id} AND stream_version >= {first}"
    );
    let from_start = format!("{range} ORDER BY stream_version");
    let from_later = format!(
        "SELECT {columns} FROM {events} WHERE stream_type = {stream_type} AND stream_id = {stream_id} AND stream_version < 1
         UNION ALL
         {range}
         ORDER BY stream_version"
    );
    [from_start, from_later]
}

/// Which of the [`stream_reads`] a read from `first_version` on runs, and the bound
/// it passes as the first version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamRange {
    /// From version 1 (or 0): one range, the whole stream.
    FromStart,
    /// From a later version: that range and the rows below 1.
    FromLater(i64),
}

impl StreamRange {
    pub(crate) fn from_version(first_version: u64) -> Self {
        match first_version {
            0 | 1 => Self::FromStart,
            later => Self::FromLater(i64::try_from(later).unwrap_or(i64::MAX)),
        }
    }

    /// Which of the two [`stream_reads`] runs: 0 from the start, 1 from later.
    pub(crate) fn index(self) -> usize {
        match self {
            Self::FromStart => 0,
            Self::FromLater(_) => 1,
        }
    }

    /// The value bound as the first version.
    pub(crate) fn first_bound(self) -> i64 {
        match self {
            Self::FromStart => i64::MIN,
            Self::FromLater(version) => version,
        }
    }
}

/// Readers of stored values, the same for every backend: each refuses what the
/// library never writes, with the reason (the caller adds where it stands). Every
/// integer read back from a database goes through one of these.
pub(crate) mod stored {
    use crate::recorded::Metadata;

    /// Where a stored event stands, for [`StoreError::Corrupt`](crate::store::StoreError::Corrupt).
    pub(crate) fn event_location(stream_type: &str, stream_id: &str, version: i64, position: i64) -> String {
        format!("stream {stream_type}/{stream_id}, version {version} (position {position})")
    }

    /// A stream's current version: 0 (no stream) or more.
    pub(crate) fn current_version(raw: i64) -> Result<u64, String> {
        u64::try_from(raw).map_err(|_| format!("stream version {raw}: versions start at 1"))
    }

    /// A snapshot's stream version: 1 or more.
    pub(crate) fn snapshot_version(raw: i64) -> Result<u64, String> {
        u64::try_from(raw)
            .ok()
            .filter(|version| *version > 0)
            .ok_or_else(|| format!("snapshot at stream version {raw}: versions start at 1"))
    }

    /// A checkpoint's or outbox row's position, or a count: 0 or more.
    pub(crate) fn count(raw: i64, what: &str) -> Result<u64, String> {
        u64::try_from(raw).map_err(|_| format!("negative {what} {raw}"))
    }

    /// A command recorded under an idempotency key: versions 1 or more, in order.
    pub(crate) fn command(
        key: &str,
        stream_type: String,
        stream_id: String,
        first_version: i64,
        last_version: i64,
        recorded_at: i64,
    ) -> Result<crate::idempotency::RecordedCommand, crate::store::StoreError> {
        let versions =
            version(first_version).and_then(|first| Ok((first, version(last_version)?))).and_then(|(first, last)| {
                if first <= last { Ok((first, last)) } else { Err(format!("versions {first}..={last} are empty")) }
            });
        let (first_version, last_version) = versions.map_err(|reason| crate::store::StoreError::Corrupt {
            location: format!("idempotency key {key:?} of stream {stream_type}/{stream_id}"),
            reason,
        })?;
        Ok(crate::idempotency::RecordedCommand {
            key: key.to_owned(),
            stream_type,
            stream_id,
            first_version,
            last_version,
            recorded_at: crate::clock::Timestamp::from_unix_micros(recorded_at),
        })
    }

    /// A delivery attempt count.
    pub(crate) fn attempts(raw: i64) -> Result<u32, String> {
        u32::try_from(raw).map_err(|_| format!("attempt count {raw} out of range"))
    }

    /// A transaction id (commit-order key) stored as text or a number.
    #[cfg(feature = "postgres")]
    pub(crate) fn commit(raw: &str) -> Result<u64, String> {
        raw.parse().map_err(|_| format!("transaction id {raw:?} is not a number"))
    }

    /// A stream version: 1, 2, 3, …
    pub(crate) fn version(raw: i64) -> Result<u64, String> {
        u64::try_from(raw)
            .ok()
            .filter(|version| *version > 0)
            .ok_or_else(|| format!("stream version {raw}: versions start at 1"))
    }

    /// A global position.
    pub(crate) fn position(raw: i64) -> Result<u64, String> {
        u64::try_from(raw).map_err(|_| format!("negative position {raw}"))
    }

    /// An event's schema version.
    pub(crate) fn schema_version(raw: i64) -> Result<u32, String> {
        u32::try_from(raw).map_err(|_| format!("schema version {raw} out of range"))
    }

    /// Metadata, stored as JSON or absent when empty.
    pub(crate) fn metadata(text: Option<&str>) -> Result<Metadata, String> {
        text.map_or_else(
            || Ok(Metadata::default()),
            |text| serde_json::from_str(text).map_err(|error| format!("metadata does not decode: {error}")),
        )
    }
}

/// Refuses a database migrated by a newer release (at schema `current`, when this one
/// knows `known` migrations) rather than misread it.
/// Returns how many migrations are applied.
pub(crate) fn check_schema_version(current: i64, known: usize, backend: &'static str) -> Result<usize, StoreError> {
    let Ok(applied) = usize::try_from(current) else {
        return Err(StoreError::Corrupt {
            location: format!("the {backend} schema table"),
            reason: format!("schema version {current} is negative"),
        });
    };
    if applied > known {
        return Err(StoreError::Backend {
            backend,
            source: format!(
                "the database schema is at version {current}, newer than version {known} that this release knows; upgrade es"
            )
            .into(),
        });
    }
    Ok(applied)
}

/// Checks a table prefix so that it cannot carry SQL: 1 to 32 ASCII letters, digits or
/// underscores, not starting with a digit.
pub(crate) fn validate_table_prefix(prefix: &str, backend: &'static str) -> Result<(), StoreError> {
    let valid = !prefix.is_empty()
        && prefix.len() <= 32
        && prefix.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::Backend {
            backend,
            source: format!(
                "invalid table prefix {prefix:?}: use 1 to 32 ASCII letters, digits or underscores, not starting with a digit"
            )
            .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_integers_below_their_range_are_refused() {
        assert!(stored::version(0).is_err());
        assert!(stored::version(-1).is_err());
        assert_eq!(stored::version(1), Ok(1));
        assert!(stored::snapshot_version(0).is_err());
        assert!(stored::current_version(-1).is_err());
        assert_eq!(stored::current_version(0), Ok(0));
        assert!(stored::count(-1, "position").is_err());
        assert!(stored::attempts(-1).is_err());
        assert!(stored::schema_version(-1).is_err());
        assert!(check_schema_version(-1, 2, "sqlite").is_err());
        assert_eq!(check_schema_version(2, 2, "sqlite").ok(), Some(2));
    }
}
