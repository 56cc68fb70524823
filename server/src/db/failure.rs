//! What a database error means for the client: a budget ran out, the
//! tenant's share of the pool is in use, the pool is exhausted, the
//! database cannot be reached — or something else (internal).

use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};

/// The message of the error a transaction gets when its tenant already
/// holds its whole share of the pool for longer than the acquire timeout.
pub(crate) const TENANT_SHARE_IN_USE: &str =
    "mlgate: the tenant's share of database connections stayed in use";

/// The message of the error a SQLite write gets when it waited for the
/// process's write queue longer than the lock budget.
pub(crate) const WRITE_QUEUE_TIMEOUT: &str =
    "mlgate: the write waited for the database's write lock past its budget";

/// The kinds of database failure a client can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A statement or lock wait ran past its budget (PostgreSQL
    /// `statement_timeout`/`lock_timeout`/idle-in-transaction timeout;
    /// SQLite's interrupt or busy timeout).
    Timeout,
    /// The caller's tenant holds its whole share of the pool.
    TenantShare,
    /// No pooled connection became free in time, or the server has no
    /// connection slots left.
    Overloaded,
    /// The database cannot be reached or is shutting down.
    Unavailable,
    /// The database has no room to write (disk full, or its size cap).
    Full,
}

/// Classifies `error`; `None` for errors that are nobody's to retry.
pub fn classify(error: &DbErr) -> Option<Failure> {
    use sea_orm::sqlx::Error as Sqlx;
    let runtime = match error {
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout) => return Some(Failure::Overloaded),
        DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed) => {
            return Some(Failure::Unavailable)
        }
        DbErr::Custom(message) if message == TENANT_SHARE_IN_USE => {
            return Some(Failure::TenantShare)
        }
        DbErr::Custom(message) if message == WRITE_QUEUE_TIMEOUT => return Some(Failure::Timeout),
        // Connecting failed, whatever the reason: the database is not there.
        DbErr::Conn(_) => return Some(Failure::Unavailable),
        DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return None,
    };
    let sqlx = match runtime {
        RuntimeErr::SqlxError(sqlx) => sqlx.as_ref(),
        RuntimeErr::Internal(_) => return None,
        #[allow(unreachable_patterns)]
        _ => return None,
    };
    match sqlx {
        Sqlx::PoolTimedOut => Some(Failure::Overloaded),
        // The connection broke mid-conversation.
        Sqlx::PoolClosed | Sqlx::Io(_) | Sqlx::Tls(_) | Sqlx::Protocol(_) | Sqlx::WorkerCrashed => {
            Some(Failure::Unavailable)
        }
        Sqlx::Database(database) => {
            let code = database.code()?;
            classify_code(&code)
        }
        _ => None,
    }
}

/// Whether `error` says the connection it was sent on is broken: its
/// socket failed, or the server ended the session (`pg_terminate_backend`,
/// an admin or crash shutdown, an idle-session timeout, a connection
/// exception). Whether the statement ran is not known (a reply may be what
/// was lost): only callers that may repeat it retry (`live.rs`).
pub(crate) fn is_broken_connection(error: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    let (DbErr::Exec(RuntimeErr::SqlxError(sqlx)) | DbErr::Query(RuntimeErr::SqlxError(sqlx))) =
        error
    else {
        return false;
    };
    match sqlx.as_ref() {
        Sqlx::Io(_) | Sqlx::Tls(_) | Sqlx::Protocol(_) | Sqlx::WorkerCrashed => true,
        Sqlx::Database(database) => database.code().is_some_and(|code| {
            matches!(code.as_ref(), "57P01" | "57P02" | "57P05") || code.starts_with("08")
        }),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs (always five characters) and SQLite result codes
/// (decimal, extended, as sqlx gives them; never above four digits).
fn classify_code(code: &str) -> Option<Failure> {
    if code.len() == 5 {
        return match code {
            // query_canceled (statement_timeout), lock_not_available
            // (lock_timeout), idle_in_transaction_session_timeout.
            "57014" | "55P03" | "25P03" => Some(Failure::Timeout),
            // too_many_connections, cannot_connect_now.
            "53300" | "57P03" => Some(Failure::Overloaded),
            // admin_shutdown, crash_shutdown, connection exceptions.
            "57P01" | "57P02" => Some(Failure::Unavailable),
            // disk_full, out_of_memory.
            "53100" | "53200" => Some(Failure::Full),
            _ if code.starts_with("08") => Some(Failure::Unavailable),
            _ => None,
        };
    }
    match code.parse::<u32>().ok().map(|c| c & 0xff) {
        // SQLITE_INTERRUPT (a read past its budget), SQLITE_BUSY and
        // SQLITE_LOCKED (the write lock stayed taken past the busy timeout).
        Some(9 | 5 | 6) => Some(Failure::Timeout),
        // SQLITE_FULL (the disk, or the configured size).
        Some(13) => Some(Failure::Full),
        // SQLITE_IOERR.
        Some(10) => Some(Failure::Unavailable),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_both_backends() {
        assert_eq!(classify_code("57014"), Some(Failure::Timeout));
        assert_eq!(classify_code("55P03"), Some(Failure::Timeout));
        assert_eq!(classify_code("53300"), Some(Failure::Overloaded));
        assert_eq!(classify_code("57P01"), Some(Failure::Unavailable));
        assert_eq!(classify_code("9"), Some(Failure::Timeout));
        assert_eq!(classify_code("517"), Some(Failure::Timeout));
        assert_eq!(classify_code("23505"), None);
        assert_eq!(classify_code("2067"), None);
        // 42501 (RLS) is not SQLite's 5 (busy) for all its low byte.
        assert_eq!(classify_code("42501"), None);
        assert_eq!(classify_code("08006"), Some(Failure::Unavailable));
        assert_eq!(classify_code("13"), Some(Failure::Full));
        assert_eq!(classify_code("53100"), Some(Failure::Full));
        assert_eq!(
            classify(&DbErr::Custom(TENANT_SHARE_IN_USE.into())),
            Some(Failure::TenantShare)
        );
        assert_eq!(
            classify(&DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)),
            Some(Failure::Overloaded)
        );
        assert_eq!(classify(&DbErr::Custom("other".into())), None);
    }

    #[test]
    fn a_broken_connection_is_told_from_a_failed_statement() {
        use sea_orm::sqlx::Error as Sqlx;
        let query = |error: Sqlx| DbErr::Query(RuntimeErr::SqlxError(std::sync::Arc::new(error)));
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone");
        assert!(is_broken_connection(&query(Sqlx::Io(io))));
        assert!(is_broken_connection(&query(Sqlx::WorkerCrashed)));
        assert!(!is_broken_connection(&query(Sqlx::PoolTimedOut)));
        assert!(!is_broken_connection(&query(Sqlx::PoolClosed)));
        // Connecting failed: another try would connect again, and wait again.
        assert!(!is_broken_connection(&DbErr::Conn(RuntimeErr::Internal(
            "refused".into()
        ))));
        assert!(!is_broken_connection(&DbErr::Custom(
            TENANT_SHARE_IN_USE.into()
        )));
    }
}
