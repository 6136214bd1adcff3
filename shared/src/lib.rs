//! Partner Hub's common crate. Each contract's function is a thin adapter over these
//! modules: the domain (`domain` and one module per capability), the single DynamoDB
//! table and its one write path (`store`), the event catalog and outbox (`events`), the
//! edge (`http`: errors, auth extractors) and the handler runner (`runtime`).

pub mod accounts;
pub mod admin;
pub mod analytics;
pub mod aws;
pub mod billing;
pub mod cache;
pub mod clock;
pub mod config;
pub mod deadletter;
pub mod domain;
#[cfg(feature = "email")]
pub mod email;
#[cfg(feature = "embed")]
pub mod embed;
pub mod events;
pub mod http;
pub mod hub;
pub mod ingress;
pub mod marketplace;
pub mod metrics;
#[cfg(feature = "outbound")]
pub mod outbound;
#[cfg(feature = "outbound")]
pub mod partner_webhooks;
pub mod partners;
pub mod plans;
pub mod round_trips;
pub mod runtime;
pub mod secrets;
pub mod signed_payload;
#[cfg(feature = "sms")]
pub mod sms;
pub mod store;
pub mod subscriptions;
pub mod telemetry;
pub mod throttle;
pub mod timeline;
#[cfg(test)]
mod trust_roots;
pub mod usage;
pub mod webhooks;

pub use config::Config;
pub use hub::Hub;
