//! casefile: a self-hosted case management server for security investigations, served
//! through one typed GraphQL API over PostgreSQL.

pub mod app;
pub mod auth;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod db;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod events;
pub mod export;
pub mod graphql;
pub mod http;
pub mod jobs;
pub mod mail;
pub mod models;
pub mod server;
pub mod signing;
pub mod storage;
pub mod telemetry;

pub use app::AppState;
pub use http::router;
