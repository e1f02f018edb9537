//! What can go wrong in the store, and what the writer does about each kind:
//!
//! - **unavailable** (the database cannot be reached or cannot work right now: no
//!   connection, a server shutting down, out of resources, a serialization failure, a
//!   busy SQLite file): keep the records and retry; `/readyz` says degraded.
//! - **permanent** (the database rejected the data of a record: a constraint or a data
//!   exception): retrying cannot help, so that record is set aside and the others go on.
//! - **ambiguous** (the connection failed after `COMMIT` was sent): the records may or may
//!   not be in; the retry skips what is (`boot`, `seq`), and the writer re-reads the open
//!   alerts, because the lost reply carried that commit's alert changes.
//!
//! Anything else (a schema problem, a bad password) is neither: the writer retries it like
//! an outage rather than discard records over what is not their fault.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// `COMMIT` was sent and no answer came back.
    #[error("commit outcome unknown: {0}")]
    Commit(sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database_url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// PostgreSQL SQLSTATE classes of a database that cannot work right now: connection
/// exception, transaction rollback (serialization failure, deadlock), insufficient
/// resources, operator intervention (shutdown, cannot connect now), system error.
const PG_UNAVAILABLE: [&str; 5] = ["08", "40", "53", "57", "58"];
/// PostgreSQL SQLSTATE classes of rejected data: data exception, integrity constraint
/// violation (CHECK, foreign key, unique, not null).
const PG_PERMANENT: [&str; 2] = ["22", "23"];
/// SQLite primary result codes of a database that cannot work right now: BUSY, LOCKED,
/// IOERR, FULL, CANTOPEN, PROTOCOL.
const SQLITE_UNAVAILABLE: [i64; 6] = [5, 6, 10, 13, 14, 15];
/// SQLite primary result codes of rejected data: TOOBIG, CONSTRAINT, MISMATCH, RANGE.
const SQLITE_PERMANENT: [i64; 4] = [18, 19, 20, 25];

impl StoreError {
    /// Wraps the error of a `COMMIT`: one the server answered with is a plain database
    /// error (the transaction is rolled back); a lost answer leaves the outcome unknown.
    pub fn of_commit(self) -> StoreError {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                StoreError::Database(sqlx::Error::Database(e))
            }
            StoreError::Database(e) => StoreError::Commit(e),
            other => other,
        }
    }

    /// True when the database could not be reached or could not work right now (as
    /// opposed to rejecting a query): the writer keeps the records and retries.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) | StoreError::Commit(e) => unavailable(e),
            // Start-up migrates first: a server that is down fails here, wrapped, and must
            // be retried like any other unreachable database rather than end the process.
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => unavailable(e),
            StoreError::Migrate(_) | StoreError::Url { .. } | StoreError::Io { .. } => false,
        }
    }

    /// True when the database rejected the data itself: the same records will fail the
    /// same way however often they are retried.
    pub fn is_permanent(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => match class(e.as_ref()) {
                Class::Postgres(code) => PG_PERMANENT.iter().any(|c| code.starts_with(c)),
                Class::Sqlite(code) => SQLITE_PERMANENT.contains(&(code & 0xff)),
                Class::Other => false,
            },
            _ => false,
        }
    }

    /// True when a commit may have happened although it failed.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, StoreError::Commit(_))
    }
}

fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(e) => match class(e.as_ref()) {
            Class::Postgres(code) => PG_UNAVAILABLE.iter().any(|c| code.starts_with(c)),
            Class::Sqlite(code) => SQLITE_UNAVAILABLE.contains(&(code & 0xff)),
            Class::Other => false,
        },
        _ => false,
    }
}

enum Class {
    /// The five-character SQLSTATE.
    Postgres(String),
    /// The (extended) result code.
    Sqlite(i64),
    Other,
}

fn class(e: &(dyn sqlx::error::DatabaseError + 'static)) -> Class {
    let Some(code) = e.code() else {
        return Class::Other;
    };
    if e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        Class::Postgres(code.into_owned())
    } else if e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        code.parse().map_or(Class::Other, Class::Sqlite)
    } else {
        Class::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_are_unavailable_and_nothing_else_is_permanent() {
        let io = StoreError::Database(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()));
        assert!(io.is_unavailable() && !io.is_permanent() && !io.is_ambiguous());
        let commit = io.of_commit();
        assert!(commit.is_unavailable() && commit.is_ambiguous());
        let timeout = StoreError::Database(sqlx::Error::PoolTimedOut);
        assert!(timeout.is_unavailable() && !timeout.is_permanent());
        let url = StoreError::Url {
            url: "x".into(),
            reason: "y".into(),
        };
        assert!(!url.is_unavailable() && !url.is_permanent());
    }
}
