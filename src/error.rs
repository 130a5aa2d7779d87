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
            AppError::Database(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ClosedConnection,
                _,
            )) => Code::Unavailable,
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

impl From<deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>> for AppError {
    fn from(
        error: deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>,
    ) -> Self {
        match error {
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
