//! The operator's paths, run from the command line (`cli`) or at start-up
//! (`app`, for `serve --demo`): demo data, schema verification, tenant
//! cleanup, drift thresholds, rollup rebuilds and key management across
//! tenants. The only
//! users of the operator's access to the database
//! (`Database::begin_as_operator`, which opens a transaction as the
//! operator's `Principal::cli`) and, beside the pool itself and its LISTEN,
//! of unscoped SQL; `tests/architecture.rs` keeps it so.

pub mod cleanup;
pub mod demo;
pub mod keys;
pub mod rollups;
pub mod thresholds;
pub mod verify;
