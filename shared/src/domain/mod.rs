//! Domain newtypes: every wire value is parsed into one of these at the edge, so the
//! rest of the hub never sees an unchecked string.

mod account;
mod ids;
#[cfg(feature = "sms")]
mod phone;
mod price;
mod shop;
pub mod subscription;
pub mod text;

pub use account::{AccountKind, AccountStatus, BillingOwner, Platform};
pub use ids::{AccountId, AwsAccountId, EventId, ExternalId, PartnerId};
#[cfg(feature = "sms")]
pub use phone::{CountryCode, PhoneE164};
pub use price::Price;
pub use shop::{CurrencyCode, Email, Locale, ShopDomain, ShopName, TzOffset};
pub use subscription::{SubscriptionId, SubscriptionStatus};
pub use text::{MAX_TEXT_CHARS, MAX_URL_BYTES, bounded_text, free_text};

/// Why a value was refused; the edge turns it into a 422 naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
