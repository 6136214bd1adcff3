//! Partner Hub's common crate. Each contract's function is a thin adapter over these
//! modules: the domain types, the single DynamoDB table, the event outbox, partner
//! authentication and the one error-to-HTTP mapping.

pub mod accounts;
pub mod analytics;
pub mod aws;
pub mod clock;
pub mod config;
pub mod deadletter;
pub mod domain;
pub mod events;
pub mod http;
pub mod hub;
pub mod marketplace;
pub mod partners;
pub mod secrets;
pub mod signed_payload;
pub mod store;
pub mod subscriptions;
pub mod telemetry;
pub mod timeline;
#[cfg(test)]
mod trust_roots;

pub use config::Config;
pub use hub::Hub;
