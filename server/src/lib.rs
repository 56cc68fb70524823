//! mlgate: a GraphQL analytics gateway over the ML monitoring database.
//!
//! Layers, imports flowing down only (`tests/architecture.rs` checks):
//! `cli` → `app` (the composition root) → `config` → `transport` (HTTP and
//! WebSocket rules) → `graphql` (the schema) / `ops` (the operator's paths)
//! / `monitors` (drift monitors evaluated by the gateway) → `write`
//! (capability-typed writes) → `auth` (credentials →
//! [`identity::Principal`]) / `events` (alert and job feeds) → `store`
//! (reads) → `error` → `db` (pool, tenant-scoped handle) → `identity`,
//! `domain` (typed vocabularies, lifecycles, explanation JSON), `keyed`,
//! `telemetry`.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub(crate) mod domain;
pub mod error;
pub(crate) mod events;
pub(crate) mod graphql;
pub mod identity;
pub(crate) mod keyed;
pub(crate) mod monitors;
pub mod ops;
pub mod store;
pub(crate) mod telemetry;
pub(crate) mod transport;
pub mod write;

pub use app::Application;
pub use config::{Cli, Config};
pub use graphql::sdl;
pub use transport::playground;
