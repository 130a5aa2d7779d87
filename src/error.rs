//! The one error type at the API boundary and its single mapping to GraphQL and HTTP.
//!
//! Every failure a client can see carries a stable `extensions.code`. Internal failures
//! are logged with their cause and reach the client only as `INTERNAL`; the HTTP layer
//! adds the request id so an operator can find the log line.

use async_graphql::ErrorExtensions;
use axum::http::StatusCode;

/// Stable error codes, as clients match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unauthenticated,
    Forbidden,
    NotFound,
    ValidationFailed,
    NameTaken,
    CaseClosed,
    CaseArchived,
    VersionConflict,
    LimitExceeded,
    LicenseRequired,
    UnsupportedForKind,
    /// The case is under legal hold: never archived or deleted.
    LegalHold,
    /// The detection holds other evidence already: evidence is never replaced.
    EvidenceExists,
    ExportTooLarge,
    QueryTooComplex,
    /// Over a rate limit (HTTP 429 with `Retry-After`).
    RateLimited,
    /// The database is unreachable or the pool exhausted (HTTP 503): try again later.
    Unavailable,
    Internal,
}

impl Code {
    /// The HTTP status of a response that answers with this code alone (DESIGN's table).
    pub const fn status(self) -> StatusCode {
        match self {
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::Forbidden => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::ValidationFailed | Code::QueryTooComplex => StatusCode::BAD_REQUEST,
            Code::ExportTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::NameTaken
            | Code::CaseClosed
            | Code::CaseArchived
            | Code::VersionConflict
            | Code::LimitExceeded
            | Code::LicenseRequired
            | Code::UnsupportedForKind
            | Code::LegalHold
            | Code::EvidenceExists => StatusCode::CONFLICT,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::ValidationFailed => "VALIDATION_FAILED",
            Code::NameTaken => "NAME_TAKEN",
            Code::CaseClosed => "CASE_CLOSED",
            Code::CaseArchived => "CASE_ARCHIVED",
            Code::VersionConflict => "VERSION_CONFLICT",
            Code::LimitExceeded => "LIMIT_EXCEEDED",
            Code::LicenseRequired => "LICENSE_REQUIRED",
            Code::UnsupportedForKind => "UNSUPPORTED_FOR_KIND",
            Code::LegalHold => "LEGAL_HOLD",
            Code::EvidenceExists => "EVIDENCE_EXISTS",
            Code::ExportTooLarge => "EXPORT_TOO_LARGE",
            Code::QueryTooComplex => "QUERY_TOO_COMPLEX",
            Code::RateLimited => "RATE_LIMITED",
            Code::Unavailable => "UNAVAILABLE",
            Code::Internal => "INTERNAL",
        }
    }
}

/// Codes of errors about the request or the GraphQL document itself.
pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
pub const BAD_REQUEST: &str = "BAD_REQUEST";
/// Apollo's automatic persisted queries: the hash names no document this server knows
/// (HTTP 200; the client sends the document with its hash next).
pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";

/// What a client reads instead of an internal error's cause.
pub const INTERNAL_MESSAGE: &str = "internal error";
/// What a client reads when the database cannot serve it.
pub const UNAVAILABLE_MESSAGE: &str = "the database is unavailable: try again";

/// The id of one request (or one WebSocket operation): in its log lines and in its
/// `INTERNAL` errors' `extensions.requestId`, so a report can be matched to the log.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    /// A fresh id.
    pub fn new() -> Self {
        RequestId(uuid::Uuid::new_v4().to_string())
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

/// Everything that can go wrong in a request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("authentication required: send `Authorization: Bearer <token>` with a valid token")]
    Unauthenticated,
    #[error("your role may not do this")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Validation { field: String, message: String },
    #[error("{1}")]
    Rule(Code, String),
    /// Over a rate limit: the client may try again in `retry_after` seconds (at least 1).
    #[error("{message}")]
    RateLimited { message: String, retry_after: u64 },
    #[error("the database is busy: try again")]
    PoolTimeout,
    /// The database cannot be reached (the cause is logged, not shown).
    #[error("the database is unavailable: try again")]
    Unavailable(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Validation { field: field.into(), message: message.into() }
    }

    /// The same error with `prefix` put before a validation error's field (`detections.3.`).
    pub fn within(self, prefix: &str) -> Self {
        match self {
            AppError::Validation { field, message } => {
                AppError::Validation { field: format!("{prefix}{field}"), message }
            }
            other => other,
        }
    }

    pub fn code(&self) -> Code {
        match self {
            AppError::Unauthenticated => Code::Unauthenticated,
            AppError::Forbidden => Code::Forbidden,
            AppError::NotFound(_) => Code::NotFound,
            AppError::Validation { .. } => Code::ValidationFailed,
            AppError::Rule(code, _) => *code,
            AppError::RateLimited { .. } => Code::RateLimited,
            AppError::PoolTimeout | AppError::Unavailable(_) => Code::Unavailable,
            AppError::Database(error) if is_connection_lost(error) => Code::Unavailable,
            AppError::Database(_) | AppError::Internal(_) => Code::Internal,
        }
    }

    /// The seconds a rate-limited client should wait (its `Retry-After`), for `RATE_LIMITED`.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The HTTP status for endpoints that answer with this error alone.
    pub fn status(&self) -> StatusCode {
        self.code().status()
    }

    /// The message a client may read: internal causes are replaced and logged instead.
    pub fn public_message(&self) -> String {
        match self.code() {
            Code::Internal => {
                tracing::error!(error = %self, detail = ?self, "internal error");
                INTERNAL_MESSAGE.to_owned()
            }
            Code::Unavailable => {
                tracing::warn!(error = %self, detail = ?self, "database unavailable");
                match self {
                    AppError::PoolTimeout => self.to_string(),
                    _ => UNAVAILABLE_MESSAGE.to_owned(),
                }
            }
            _ => self.to_string(),
        }
    }
}

/// Whether a diesel error says the connection itself is gone (the server stopped, crashed
/// or failed over; the network dropped it), by its kind: diesel-async reports a query on a
/// closed connection, or one whose connection closed under it, as `UnableToSendCommand`
/// (or `ClosedConnection`). The pool drops such a connection at its next checkout.
/// A commit whose connection dropped fails its rollback the same way, and a connection
/// whose rollback failed so reports `BrokenTransactionManager` afterwards.
pub fn is_connection_lost(error: &diesel::result::Error) -> bool {
    use diesel::result::DatabaseErrorKind::{ClosedConnection, UnableToSendCommand};
    use diesel::result::Error;
    match error {
        Error::DatabaseError(ClosedConnection | UnableToSendCommand, _) => true,
        Error::RollbackErrorOnCommit { rollback_error, .. } => is_connection_lost(rollback_error),
        Error::BrokenTransactionManager => true,
        _ => false,
    }
}

impl From<deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>> for AppError {
    fn from(
        error: deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>,
    ) -> Self {
        match error {
            // Making a new connection took too long: the database is unreachable.
            deadpool::managed::PoolError::Timeout(deadpool::managed::TimeoutType::Create) => {
                AppError::Unavailable("database connection: connect timed out".to_owned())
            }
            deadpool::managed::PoolError::Timeout(_) => AppError::PoolTimeout,
            // A new connection could not be made: the database is down or unreachable.
            deadpool::managed::PoolError::Backend(cause) => {
                AppError::Unavailable(format!("database connection: {cause}"))
            }
            other => AppError::Internal(anyhow::anyhow!("database pool: {other}")),
        }
    }
}

impl From<&AppError> for async_graphql::Error {
    fn from(error: &AppError) -> Self {
        let code = error.code();
        let field = match error {
            AppError::Validation { field, .. } => Some(field.clone()),
            _ => None,
        };
        let retry_after = error.retry_after();
        async_graphql::Error::new(error.public_message()).extend_with(|_, ext| {
            ext.set("code", code.as_str());
            if let Some(field) = field {
                ext.set("field", field);
            }
            if let Some(seconds) = retry_after {
                ext.set("retryAfter", seconds);
            }
        })
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(error: AppError) -> Self {
        (&error).into()
    }
}

/// A DataLoader's error: one error shared by every key of a batch.
#[derive(Debug, Clone)]
pub struct LoadError(pub std::sync::Arc<AppError>);

impl<E: Into<AppError>> From<E> for LoadError {
    fn from(error: E) -> Self {
        LoadError(std::sync::Arc::new(error.into()))
    }
}

impl From<LoadError> for async_graphql::Error {
    fn from(error: LoadError) -> Self {
        error.0.as_ref().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorKind, Error as DieselError};

    fn database(kind: DatabaseErrorKind) -> AppError {
        AppError::Database(DieselError::DatabaseError(kind, Box::new("cause".to_owned())))
    }

    #[test]
    fn a_lost_connection_is_unavailable_and_other_database_errors_internal() {
        for kind in [DatabaseErrorKind::UnableToSendCommand, DatabaseErrorKind::ClosedConnection] {
            let error = database(kind);
            assert_eq!(error.code(), Code::Unavailable, "{kind:?}");
            assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(error.public_message(), UNAVAILABLE_MESSAGE);
        }
        for kind in [DatabaseErrorKind::UniqueViolation, DatabaseErrorKind::Unknown] {
            assert_eq!(database(kind).code(), Code::Internal, "{kind:?}");
        }
        assert_eq!(AppError::Database(DieselError::NotFound).code(), Code::Internal);
        let lost = |kind| Box::new(DieselError::DatabaseError(kind, Box::new("x".to_owned())));
        let commit = |rollback| DieselError::RollbackErrorOnCommit {
            rollback_error: rollback,
            commit_error: lost(DatabaseErrorKind::Unknown),
        };
        let failed_commit =
            AppError::Database(commit(lost(DatabaseErrorKind::UnableToSendCommand)));
        assert_eq!(failed_commit.code(), Code::Unavailable);
        let refused_commit = AppError::Database(commit(lost(DatabaseErrorKind::Unknown)));
        assert_eq!(refused_commit.code(), Code::Internal);
    }

    #[test]
    fn a_failed_or_timed_out_connect_is_unavailable_and_a_full_pool_busy() {
        use deadpool::managed::{PoolError, TimeoutType};
        use diesel_async::pooled_connection::PoolError as Backend;
        let refused = PoolError::Backend(Backend::ConnectionError(
            diesel::ConnectionError::BadConnection("connection refused".into()),
        ));
        assert!(matches!(AppError::from(refused), AppError::Unavailable(_)));
        let slow = AppError::from(PoolError::Timeout(TimeoutType::Create));
        assert!(matches!(slow, AppError::Unavailable(_)));
        let busy = AppError::from(PoolError::Timeout(TimeoutType::Wait));
        assert!(matches!(busy, AppError::PoolTimeout));
        assert_eq!(busy.code(), Code::Unavailable);
    }
}
