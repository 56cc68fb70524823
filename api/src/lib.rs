//! mlgate: a GraphQL analytics gateway over the ML monitoring database.
//!
//! Layers, imports flowing down only (`tests/architecture.rs` checks):
//! `cli` → `app` (the composition root) → `config` → `transport` (HTTP and
//! WebSocket rules) → `graphql` (the schema) / `ops` (the operator's paths)
//! → `write` (capability-typed writes) → `auth` (credentials →
//! [`identity::Principal`]) / `events` (alert and job feeds) → `store`
//! (reads) → `error` → `db` (pool, tenant-scoped handle) → `identity`,
//! `keyed`, `telemetry`.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod graphql;
pub mod identity;
pub mod keyed;
pub mod ops;
pub mod store;
pub mod telemetry;
pub mod transport;
pub mod write;

pub use app::Application;
pub use config::{Cli, Config};
