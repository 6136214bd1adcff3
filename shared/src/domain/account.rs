use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// The shop platforms the signed-payload contract names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Magento1,
    Magento2,
    Opencart,
    Woocommerce,
    Custom,
}

impl Platform {
    pub const ALL: [Platform; 5] = [
        Platform::Magento1,
        Platform::Magento2,
        Platform::Opencart,
        Platform::Woocommerce,
        Platform::Custom,
    ];

    pub fn parse(value: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == value.trim())
            .ok_or_else(|| {
                ParseError::new("must be one of magento1, magento2, opencart, woocommerce, custom")
            })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Platform::Magento1 => "magento1",
            Platform::Magento2 => "magento2",
            Platform::Opencart => "opencart",
            Platform::Woocommerce => "woocommerce",
            Platform::Custom => "custom",
        }
    }
}

/// Where an account is in its life; every contract moves accounts through these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Created, waiting for setup or QA before it goes live.
    Provisioning,
    /// Live: integrations run and usage accrues.
    Active,
    /// Paused by the partner or suspended for non-payment: integrations stopped.
    Paused,
    /// Cancelled: automations stopped, residual data deleted after the effective date.
    Cancelled,
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AccountStatus::Provisioning => "provisioning",
            AccountStatus::Active => "active",
            AccountStatus::Paused => "paused",
            AccountStatus::Cancelled => "cancelled",
        })
    }
}

/// What kind of account a record is; every contract's accounts are the same record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Shop,
    SubAccount,
    Customer,
    /// A loyalty client's site (the SMS contract): its SMS usage is billed like any
    /// account's.
    SmsSite,
}

/// Who invoices an account's subscriptions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingOwner {
    /// The hub's own payment and invoice features apply.
    #[default]
    Hub,
    /// The partner invoices its customer (usage records go to the partner).
    Partner,
    /// A marketplace collects payment; the hub's payment features are off.
    Marketplace,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_are_the_contract_list() {
        for p in Platform::ALL {
            assert_eq!(Platform::parse(p.as_str()).unwrap(), p);
        }
        assert!(Platform::parse("shopify").is_err());
        assert!(Platform::parse("Magento2").is_err());
    }
}
