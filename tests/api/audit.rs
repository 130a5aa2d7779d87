//! The change record (issue 8, items 1–3): every change writes its events in its own
//! transaction into a per-tenant hash chain; the audit API reads and verifies it.

mod chain;
mod recorded;
