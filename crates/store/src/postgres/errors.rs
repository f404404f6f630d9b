//! PostgreSQL's failures sorted for callers: a full disk, and the database unreachable or going
//! away, each reported as an [`std::io::Error`] of the kind the core's ports recognize
//! ([`airlock_core::ports::storage_full`], [`airlock_core::ports::store_unavailable`]); every
//! other failure as it is.

use std::io::ErrorKind;

/// SQLSTATE `disk_full`. (`out_of_memory`, `53200`, is not a full disk.)
const DISK_FULL: &str = "53100";

/// SQLSTATEs after which the request can only be retried later, its transaction rolled back:
/// a server going away or not there yet (`admin_shutdown`, `crash_shutdown`,
/// `cannot_connect_now`), one with no connection to spare (`too_many_connections`), and a
/// statement that ran past `store.statement_timeout_ms` (`query_canceled`), as one waiting for
/// the sequencer lock behind a long write does.
const GOING_AWAY: [&str; 5] = ["57P01", "57P02", "57P03", "53300", "57014"];

/// SQLSTATE class `08`: connection exceptions.
const CONNECTION_EXCEPTION_CLASS: &str = "08";

/// The kind of [`std::io::Error`] a SQLSTATE is reported as, if it is one callers act on.
fn kind_of_code(code: &str) -> Option<ErrorKind> {
    if code == DISK_FULL {
        Some(ErrorKind::StorageFull)
    } else if code.starts_with(CONNECTION_EXCEPTION_CLASS) || GOING_AWAY.contains(&code) {
        Some(ErrorKind::NotConnected)
    } else {
        None
    }
}

/// The kind of [`std::io::Error`] `error` is reported as: `StorageFull` for a full disk,
/// `NotConnected` when PostgreSQL cannot be reached or is going away; `None` for the rest.
pub(super) fn kind_of(error: &sqlx::Error) -> Option<ErrorKind> {
    match error {
        sqlx::Error::Database(db) => db.code().and_then(|code| kind_of_code(&code)),
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            Some(ErrorKind::NotConnected)
        }
        _ => None,
    }
}

/// `error` as a store failure's source: wrapped in an [`std::io::Error`] of its kind when
/// [`kind_of`] gives one, as it is otherwise.
pub(super) fn classify(error: sqlx::Error) -> Box<dyn std::error::Error + Send + Sync> {
    match kind_of(&error) {
        Some(kind) => Box::new(std::io::Error::new(kind, error)),
        None => Box::new(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_sorted_by_what_the_caller_does() {
        let cases = [
            ("53100", Some(ErrorKind::StorageFull)),
            ("53200", None),
            ("53300", Some(ErrorKind::NotConnected)),
            ("08000", Some(ErrorKind::NotConnected)),
            ("08006", Some(ErrorKind::NotConnected)),
            ("08P01", Some(ErrorKind::NotConnected)),
            ("57P01", Some(ErrorKind::NotConnected)),
            ("57P02", Some(ErrorKind::NotConnected)),
            ("57P03", Some(ErrorKind::NotConnected)),
            ("57014", Some(ErrorKind::NotConnected)),
            ("23505", None),
            ("40001", None),
        ];
        for (code, kind) in cases {
            assert_eq!(kind_of_code(code), kind, "SQLSTATE {code}");
        }
    }

    #[test]
    fn lost_connections_are_unavailable_and_the_rest_as_they_are() {
        let refused = || sqlx::Error::Io(std::io::Error::from(ErrorKind::ConnectionRefused));
        let unavailable =
            [refused(), sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed, sqlx::Error::Tls("bad".into())];
        for error in unavailable {
            let shown = error.to_string();
            let store = airlock_core::ports::StoreError { operation: "test", source: classify(error) };
            assert!(airlock_core::ports::store_unavailable(&store), "{shown}");
            assert!(!airlock_core::ports::storage_full(&store), "{shown}");
        }
        let other = airlock_core::ports::StoreError { operation: "test", source: classify(sqlx::Error::RowNotFound) };
        assert!(!airlock_core::ports::store_unavailable(&other));
        assert!(!airlock_core::ports::storage_full(&other));
    }
}
