//! mlgate: a GraphQL analytics gateway over the ML monitoring database.
//!
//! One request, top to bottom (see `shared/spec/architecture.md`):
//! `transport` (HTTP/WS protocol rules) → `auth` (credentials → [`auth::Principal`])
//! → `graphql` (schema, one module per domain) → `data` (plain functions taking a
//! [`db::Scoped`] handle) → `entity` / SQL.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod data;
pub mod db;
pub mod demo;
pub mod error;
pub mod events;
pub mod graphql;
pub mod keyed;
pub mod service;
pub mod telemetry;
pub mod transport;
pub mod verify;

pub use app::Application;
pub use config::{Cli, Config};
