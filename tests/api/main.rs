//! casefile's integration tests: one binary, a database per test.

mod common;

mod auth;
mod bootstrap;
mod case_lists;
mod case_races;
mod case_rules;
mod database;
mod detections;
mod embedded;
mod graphiql;
mod http_rules;
mod nodes;
mod process;
mod retention;
mod roles;
mod schema_file;
mod stored_values;
mod subjects;
mod tenancy;
mod users;
mod websocket;
