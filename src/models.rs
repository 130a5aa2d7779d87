//! Rows, inserts and queries, one file per table family. Functions take a connection
//! and return `QueryResult`; the caller owns the transaction.

pub mod ids;
pub mod tenants;
pub mod tokens;
pub mod users;
