use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ParseError;

/// Namespace for the hub's deterministic ids (UUIDv5), so that the natural key of a
/// record (a shop's host, a partner's customer id) decides its id and a conditional
/// put on that id is the uniqueness check.
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x5d1f_0c2e_8a3b_4e57_9c61_2f0b_7a44_d9e3);

macro_rules! uuid_id {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }

            pub fn parse(value: &str) -> Result<Self, ParseError> {
                Uuid::parse_str(value)
                    .map(Self)
                    .map_err(|_| ParseError::new(concat!("not a valid ", stringify!($name))))
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    PartnerId,
    "A partner of the platform (an integrator that calls the hub)."
);
uuid_id!(
    AccountId,
    "An account: a shop, a sub-account or a customer of a partner."
);
uuid_id!(
    EventId,
    "An event the hub emitted (outbox) or received (idempotency ledger)."
);

impl AccountId {
    /// Shops are unique across partners by host, so a shop's account id is derived from it.
    pub fn for_shop(shop: &super::ShopDomain) -> Self {
        Self(Uuid::new_v5(
            &ID_NAMESPACE,
            format!("shop:{}", shop.as_str()).as_bytes(),
        ))
    }

    /// A partner's customer is unique per partner by external id.
    /// A loyalty SMS site's account: site ids are the hub's own, unique across partners.
    pub fn for_sms_site(site_id: u64) -> Self {
        Self(Uuid::new_v5(
            &ID_NAMESPACE,
            format!("sms-site:{site_id}").as_bytes(),
        ))
    }

    /// An embed API sub-account: its number is the hub's own; the partner is in the
    /// derivation so a number of another partner's finds nothing.
    pub fn for_sub_account(partner: PartnerId, number: u64) -> Self {
        Self(Uuid::new_v5(
            &ID_NAMESPACE,
            format!("sub-account:{partner}:{number}").as_bytes(),
        ))
    }

    pub fn for_external(partner: PartnerId, external: &ExternalId) -> Self {
        Self(Uuid::new_v5(
            &ID_NAMESPACE,
            format!("external:{partner}:{}", external.as_str()).as_bytes(),
        ))
    }
}

/// An AWS account id: twelve digits. EventBridge stamps the sender's into every
/// envelope (`account`), which no sender can forge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AwsAccountId(String);

impl AwsAccountId {
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        let value = value.trim();
        if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(ParseError::new("must be a 12-digit AWS account id"))
        }
    }

    /// The account that owns an ARN (`arn:aws:events:<region>:<account>:...`).
    pub fn of_arn(arn: &str) -> Option<Self> {
        Self::parse(arn.split(':').nth(4)?).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AwsAccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The partner's own id for an account (its customer id, or the shop host for shops).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExternalId(String);

impl ExternalId {
    const MAX_LEN: usize = 256;

    pub fn parse(value: &str) -> Result<Self, ParseError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(ParseError::new("must not be empty"));
        }
        if value.len() > Self::MAX_LEN {
            return Err(ParseError::new("must be at most 256 characters"));
        }
        if value.chars().any(char::is_control) {
            return Err(ParseError::new("must not contain control characters"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ShopDomain;

    #[test]
    fn shop_account_id_is_stable_and_case_insensitive() {
        let a = AccountId::for_shop(&ShopDomain::parse("My-Shop.com").unwrap());
        let b = AccountId::for_shop(&ShopDomain::parse("my-shop.com").unwrap());
        assert_eq!(a, b);
        let c = AccountId::for_shop(&ShopDomain::parse("other.com").unwrap());
        assert_ne!(a, c);
    }

    #[test]
    fn external_ids_are_scoped_by_partner() {
        let ext = ExternalId::parse("cust-1").unwrap();
        let p1 = PartnerId::random();
        let p2 = PartnerId::random();
        assert_ne!(
            AccountId::for_external(p1, &ext),
            AccountId::for_external(p2, &ext)
        );
        assert_eq!(
            AccountId::for_external(p1, &ext),
            AccountId::for_external(p1, &ext)
        );
    }

    #[test]
    fn aws_account_ids_are_twelve_digits() {
        assert!(AwsAccountId::parse("111122223333").is_ok());
        for bad in [
            "",
            "11112222333",
            "1111222233334",
            "11112222333x",
            "partner-hub",
        ] {
            assert!(AwsAccountId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            AwsAccountId::of_arn("arn:aws:events:eu-west-1:111122223333:event-bus/acme")
                .unwrap()
                .as_str(),
            "111122223333"
        );
    }

    #[test]
    fn external_id_rejects_empty_and_control_chars() {
        assert!(ExternalId::parse("  ").is_err());
        assert!(ExternalId::parse("a\nb").is_err());
        assert!(ExternalId::parse(&"x".repeat(257)).is_err());
        assert_eq!(ExternalId::parse(" c-1 ").unwrap().as_str(), "c-1");
    }
}
