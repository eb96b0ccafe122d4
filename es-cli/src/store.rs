//! Opening the store named by `--db`: a SQLite file or a PostgreSQL URL.

use es_core::StoreError;
use es_core::admin::SchemaStatus;
use es_core::sqlite::{SqliteOptions, SqliteStore};

use crate::error::Failure;

/// How long to wait for a PostgreSQL server: an operator at a terminal wants to hear
/// soon that it cannot be reached.
#[cfg(feature = "postgres")]
pub(crate) const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// An open store of either backend.
#[derive(Debug)]
pub enum Store {
    /// A SQLite file.
    Sqlite(SqliteStore),
    /// A PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(es_core::postgres::PgStore),
}

/// Runs the same code on whichever store is open: the commands are generic over the
/// store traits, and this picks the concrete type.
macro_rules! with_store {
    ($store:expr, |$s:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($s) => $body,
            #[cfg(feature = "postgres")]
            $crate::store::Store::Postgres($s) => $body,
        }
    };
}
pub(crate) use with_store;

/// Where `--db` points.
#[derive(Debug, Clone)]
pub enum Target {
    /// A SQLite file path.
    Sqlite(String),
    /// A PostgreSQL URL.
    Postgres(String),
}

impl Target {
    /// Reads `--db`: a `postgres://` or `postgresql://` URL, or else a file path.
    pub fn parse(db: Option<&str>) -> Result<Self, Failure> {
        let Some(db) = db.filter(|db| !db.trim().is_empty()) else {
            return Err(Failure::Usage(
                "no database given: pass --db <PATH|URL> or set ES_DATABASE (a SQLite file or a postgres:// URL)"
                    .into(),
            ));
        };
        if db.starts_with("postgres://") || db.starts_with("postgresql://") {
            Ok(Self::Postgres(db.to_owned()))
        } else if db.contains("://") {
            Err(Failure::Usage(format!("{} is neither a SQLite file path nor a postgres:// URL", redact(db))))
        } else {
            Ok(Self::Sqlite(db.to_owned()))
        }
    }

    /// How to name the database in messages (a URL without its password).
    pub fn name(&self) -> String {
        match self {
            Self::Sqlite(path) => path.clone(),
            Self::Postgres(url) => redact(url),
        }
    }
}

/// A URL with its password replaced, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = rest.split_once('/').map_or((rest, ""), |(a, t)| (a, t));
    let Some((credentials, host)) = authority.rsplit_once('@') else { return url.to_owned() };
    let user = credentials.split_once(':').map_or(credentials, |(user, _)| user);
    let slash = if rest.contains('/') { "/" } else { "" };
    if credentials.contains(':') { format!("{scheme}://{user}:***@{host}{slash}{tail}") } else { url.to_owned() }
}

/// How a command uses the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only: the store is opened read-only, and its schema must be current.
    Read,
    /// Changes rows: the store is opened for writing, and its schema must be current
    /// (only `es migrate` upgrades it).
    Write,
}

fn open_error(target: &Target, error: &StoreError) -> Failure {
    let hint = match target {
        Target::Sqlite(_) => "check that this user may read it",
        Target::Postgres(_) => "check the URL, that the server is up, and the credentials",
    };
    Failure::Connection(format!("cannot open {}: {error}; {hint}", target.name()))
}

/// Opens the store for a command.
pub async fn open(target: &Target, prefix: &str, access: Access) -> Result<Store, Failure> {
    // The schema is checked first, whatever the access: a command never migrates by
    // the way (only `es migrate` does), and a newer schema is never touched.
    let status = schema_status(target, prefix).await?;
    require_current(target, status)?;
    match target {
        Target::Sqlite(path) => {
            let options = SqliteOptions::new(path).table_prefix(prefix);
            let store = match access {
                Access::Read => options.open_read_only().await,
                Access::Write => options.open().await,
            };
            store.map(Store::Sqlite).map_err(|error| open_error(target, &error))
        }
        #[cfg(feature = "postgres")]
        Target::Postgres(url) => {
            let options = es_core::postgres::PgOptions::new(url.clone())
                .table_prefix(prefix)
                .max_connections(2)
                .connect_timeout(CONNECT_TIMEOUT);
            let store = match access {
                Access::Read => options.open_read_only().await,
                Access::Write => options.open().await,
            };
            store.map(Store::Postgres).map_err(|error| open_error(target, &error))
        }
        #[cfg(not(feature = "postgres"))]
        Target::Postgres(_) => Err(no_postgres()),
    }
}

#[cfg(not(feature = "postgres"))]
fn no_postgres() -> Failure {
    Failure::Usage("this es was built without PostgreSQL support; rebuild it with `--features postgres`".into())
}

/// Where the database's schema stands, changing nothing.
pub async fn schema_status(target: &Target, prefix: &str) -> Result<SchemaStatus, Failure> {
    let status = match target {
        Target::Sqlite(path) => SqliteOptions::new(path).table_prefix(prefix).schema_status().await,
        #[cfg(feature = "postgres")]
        Target::Postgres(url) => {
            es_core::postgres::PgOptions::new(url.clone())
                .table_prefix(prefix)
                .max_connections(1)
                .connect_timeout(CONNECT_TIMEOUT)
                .schema_status()
                .await
        }
        #[cfg(not(feature = "postgres"))]
        Target::Postgres(_) => return Err(no_postgres()),
    };
    status.map_err(|error| open_error(target, &error))
}

/// Refuses a schema this release cannot read as it is.
pub fn require_current(target: &Target, status: SchemaStatus) -> Result<(), Failure> {
    let name = target.name();
    if status.current == 0 {
        Err(Failure::Schema(format!(
            "{name} holds no es tables with the prefix given; check --db and --prefix, or create them with `es migrate`"
        )))
    } else if status.is_newer() {
        Err(Failure::Schema(format!(
            "the schema of {name} is at version {}, newer than version {} that this es knows; use the es release that migrated it, or a newer one",
            status.current, status.latest
        )))
    } else if status.upgrade_pending() {
        Err(Failure::Schema(format!(
            "the schema of {name} is at version {}, older than version {} of this es; upgrade it with `es migrate` (stop or upgrade the services using it first)",
            status.current, status.latest
        )))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://u:p@h"), "postgres://u:***@h");
    }

    #[test]
    fn a_url_of_another_scheme_is_refused() {
        assert!(matches!(Target::parse(Some("mysql://h/db")), Err(Failure::Usage(_))));
        assert!(matches!(Target::parse(Some("app.db")), Ok(Target::Sqlite(_))));
        assert!(matches!(Target::parse(Some("postgresql://h/db")), Ok(Target::Postgres(_))));
        assert!(matches!(Target::parse(None), Err(Failure::Usage(_))));
    }
}
