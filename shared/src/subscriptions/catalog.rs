//! Which products each subscription tier includes: configuration, not code.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Tier -> products. Configurable with `TIER_PRODUCTS` (a JSON object of tier -> product
/// list); the default is [`TierCatalog::default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierCatalog(pub BTreeMap<String, Vec<String>>);

impl Default for TierCatalog {
    fn default() -> Self {
        let tier = |products: &[&str]| products.iter().map(|p| (*p).to_owned()).collect();
        Self(BTreeMap::from([
            ("starter".to_owned(), tier(&["widget"])),
            ("growth".to_owned(), tier(&["widget", "search"])),
            (
                "enterprise".to_owned(),
                tier(&["widget", "search", "lead_capture", "scheduling"]),
            ),
        ]))
    }
}

impl TierCatalog {
    pub fn from_json(text: &str) -> Result<Self, String> {
        let catalog: BTreeMap<String, Vec<String>> = serde_json::from_str(text)
            .map_err(|e| format!("TIER_PRODUCTS is not a JSON object of lists: {e}"))?;
        if catalog.is_empty() {
            return Err("TIER_PRODUCTS names no tier".into());
        }
        Ok(Self(catalog))
    }

    pub fn products(&self, tier: &str) -> Option<&[String]> {
        self.0.get(tier).map(Vec::as_slice)
    }

    /// The tiers, for error messages.
    pub fn tiers(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_catalog_is_configurable() {
        let catalog = TierCatalog::from_json(r#"{"basic": ["widget"]}"#).unwrap();
        assert_eq!(catalog.products("basic").unwrap(), ["widget"]);
        assert!(TierCatalog::from_json("{}").is_err());
        assert!(TierCatalog::from_json("[]").is_err());
    }
}
