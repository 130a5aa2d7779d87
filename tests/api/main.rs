//! casefile's integration tests: one binary, a database per test.

mod common;

mod audit;
mod auth;
mod bootstrap;
mod case_lists;
mod case_races;
mod case_rules;
mod code_layout;
mod concurrency;
mod database;
mod delivery;
mod detections;
mod embedded;
mod evidence;
mod export;
mod faults;
mod folding;
#[cfg(not(casefile_no_graphiql))]
mod graphiql;
#[cfg(casefile_no_graphiql)]
mod graphiql_missing;
mod hostile;
mod http_rules;
mod input_limits;
mod limits;
mod live;
mod mail;
mod messages;
mod ndjson;
mod nodes;
mod pages;
mod persisted_queries;
mod process;
mod rate_limits;
mod rekey;
mod retention;
mod retention_jobs;
mod roles;
mod schema_docs;
mod schema_file;
mod seed;
mod statement_cache;
mod stats;
mod stored_values;
mod subjects;
mod tenancy;
mod transfers;
mod transports;
mod users;
mod webhooks;
mod websocket;
