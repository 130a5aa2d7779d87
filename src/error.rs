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
    ExportTooLarge,
    QueryTooComplex,
    Internal,
}

impl Code {
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
            Code::ExportTooLarge => "EXPORT_TOO_LARGE",
            Code::QueryTooComplex => "QUERY_TOO_COMPLEX",
            Code::Internal => "INTERNAL",
        }
    }
}

/// Codes of errors about the GraphQL document itself, set by the HTTP layer.
pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
pub const BAD_REQUEST: &str = "BAD_REQUEST";

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
    #[error("the database is busy: try again")]
    PoolTimeout,
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
            AppError::PoolTimeout | AppError::Database(_) | AppError::Internal(_) => Code::Internal,
        }
    }

    /// The HTTP status for endpoints that answer with this error alone.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Validation { .. } => StatusCode::BAD_REQUEST,
            AppError::Rule(Code::ExportTooLarge, _) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Rule(Code::QueryTooComplex, _) => StatusCode::BAD_REQUEST,
            AppError::Rule(..) => StatusCode::CONFLICT,
            AppError::PoolTimeout => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Database(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message a client may read: internal causes are replaced and logged instead.
    pub fn public_message(&self) -> String {
        match self.code() {
            Code::Internal => {
                tracing::error!(error = %self, detail = ?self, "internal error");
                match self {
                    AppError::PoolTimeout => self.to_string(),
                    _ => "internal error".to_owned(),
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
        async_graphql::Error::new(error.public_message()).extend_with(|_, ext| {
            ext.set("code", code.as_str());
            if let Some(field) = field {
                ext.set("field", field);
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
