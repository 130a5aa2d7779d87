//! Rows, inserts and queries, one file per table family. Functions take a connection
//! and return `QueryResult`; the caller owns the transaction.

pub mod cases;
pub mod database;
pub mod delivery;
pub mod detections;
pub mod enums;
pub mod events;
pub mod evidence;
pub mod fold;
pub mod ids;
pub mod links;
pub mod live;
pub mod mail;
pub mod messages;
pub mod page;
pub mod rekey;
pub mod seed;
pub mod sql;
pub mod stats;
pub mod storable;
pub mod subjects;
pub mod tenants;
pub mod tokens;
pub mod users;
pub mod webhooks;
