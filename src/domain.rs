//! The domain's operations: each checks who may do it and every rule of DESIGN.md, then
//! changes the database in one transaction. GraphQL resolvers call these and convert.

pub mod access;
pub mod admin;
pub mod case_detections;
pub mod cases;
pub mod ingest;
pub mod subjects;

use crate::error::AppError;

/// Maps a unique-index violation on `constraint` to `error`, anything else unchanged.
pub(crate) fn on_constraint(
    error: diesel::result::Error,
    constraint: &str,
    to: impl FnOnce() -> AppError,
) -> AppError {
    match &error {
        diesel::result::Error::DatabaseError(_, info)
            if info.constraint_name() == Some(constraint) =>
        {
            to()
        }
        _ => AppError::Database(error),
    }
}
