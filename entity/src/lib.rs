//! SeaORM entities for the mlgate database. These are storage types only:
//! the API maps them to its own types, so a column added here is never
//! exposed by accident.

pub mod alert_event;
pub mod alert_sequence;
pub mod api_key;
pub mod configuration;
pub mod drift_metric;
pub mod drift_threshold;
pub mod feature_set;
pub mod feedback;
pub mod model;
pub mod monitor;
pub mod prediction;
mod string_list;
pub mod training_job;
pub mod webhook;
pub mod webhook_delivery;

pub use string_list::StringList;
