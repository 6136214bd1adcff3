//! Domain newtypes: every wire value is parsed into one of these at the edge, so the
//! rest of the hub never sees an unchecked string.

mod account;
mod ids;
mod shop;

pub use account::{AccountStatus, Platform};
pub use ids::{AccountId, EventId, ExternalId, PartnerId};
pub use shop::{CurrencyCode, Email, Locale, ShopDomain, ShopName, TzOffset};

/// Why a value was refused; the edge turns it into a 422 naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
