//! A marketplace event in domain terms, as the `marketplace-webhooks` function parses it
//! from the contract's wire format.

use serde::{Deserialize, Serialize};

use super::UserProfile;
use crate::domain::{ExternalId, Price};

/// What a marketplace tells the hub. `as_str` gives the contract's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    UserCreate,
    UserUpdate,
    UserDelete,
    ProductPurchase,
    ProductCancel,
    ProductSuspend,
    ProductResume,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::UserCreate,
        EventType::UserUpdate,
        EventType::UserDelete,
        EventType::ProductPurchase,
        EventType::ProductCancel,
        EventType::ProductSuspend,
        EventType::ProductResume,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            EventType::UserCreate => "user.create",
            EventType::UserUpdate => "user.update",
            EventType::UserDelete => "user.delete",
            EventType::ProductPurchase => "product.purchase",
            EventType::ProductCancel => "product.cancel",
            EventType::ProductSuspend => "product.suspend",
            EventType::ProductResume => "product.resume",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }

    pub fn is_product(&self) -> bool {
        self.as_str().starts_with("product.")
    }
}

/// The product an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductInfo {
    /// The marketplace's product id.
    pub id: ExternalId,
    /// The hub's product id as the marketplace echoes it (`p-…`), if it sent one.
    pub partner_id: Option<String>,
    pub name: Option<String>,
    /// Required for a purchase (the parser checks).
    pub price: Option<Price>,
    pub price_type: Option<String>,
    pub price_interval: Option<String>,
}

/// What an event carries besides its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    User(UserProfile),
    Product(ProductInfo),
    None,
}

/// A marketplace event, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketplaceEvent {
    /// The marketplace's event id: the idempotency key.
    pub id: ExternalId,
    pub event_type: EventType,
    /// The marketplace's user id.
    pub user_id: ExternalId,
    /// The hub's user id (`u-…`) as the marketplace echoes it.
    pub user_partner_id: Option<String>,
    pub payload: Payload,
}

/// What the hub answers for an applied event: its ids for the user and the product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketplaceOutcome {
    pub user_partner_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_partner_id: Option<String>,
}
