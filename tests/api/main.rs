//! casefile's integration tests: one binary, a database per test.

mod common;

mod audit;
mod auth;
mod bootstrap;
mod case_lists;
mod case_races;
mod case_rules;
mod code_layout;
mod database;
mod detections;
mod embedded;
mod folding;
mod graphiql;
mod http_rules;
mod input_limits;
mod limits;
mod ndjson;
mod nodes;
mod process;
mod rekey;
mod retention;
mod roles;
mod schema_docs;
mod schema_file;
mod seed;
mod stored_values;
mod subjects;
mod tenancy;
mod transports;
mod users;
mod websocket;
