//! casefile's integration tests: one binary, a database per test.

mod common;

mod auth;
mod bootstrap;
mod embedded;
mod graphiql;
mod http_rules;
mod nodes;
mod process;
mod schema_file;
mod websocket;
