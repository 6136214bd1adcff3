//! The Ready for Installation event the hub sends to a partner's bus
//! (`subscription-events-eventbridge.md`).

use serde::{Deserialize, Serialize};
use shared::domain::subscription::Subscription;

/// The contract's `detail-type`.
pub const READY_FOR_INSTALLATION: &str = "Ready for Installation";

/// The contract's detail: the customer id, and per channel an installable snippet and
/// its key (empty when the tier does not include the channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyForInstallation {
    pub id: String,
    pub widget_snippet: String,
    pub widget_key: String,
    pub search_snippet: String,
    pub search_key: String,
}

impl ReadyForInstallation {
    /// Script tags that load the hub's widget script with their key.
    pub fn for_plan(plan: &Subscription, public_base_url: &str) -> Self {
        let base = public_base_url.trim_end_matches('/');
        let tag = |channel: &str, key: &str| {
            format!(
                r#"<script async src="{base}/widget.js" data-channel="{channel}" data-key="{key}" data-endpoint="{base}/api/v0/widget/events"></script>"#
            )
        };
        let (widget_key, search_key) = plan
            .installation
            .as_ref()
            .map(|i| (i.widget_key.clone(), i.search_key.clone()))
            .unwrap_or_default();
        let search = plan.has("search");
        Self {
            id: plan.customer_id.to_string(),
            widget_snippet: tag("widget", &widget_key),
            widget_key,
            search_snippet: if search {
                tag("search", &search_key)
            } else {
                String::new()
            },
            search_key: if search { search_key } else { String::new() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{
        AccountId, BillingOwner, ExternalId, PartnerId, SubscriptionId,
        subscription::{Installation, Terms},
    };

    fn plan(products: &[&str]) -> Subscription {
        let account = AccountId::random();
        let terms = Terms::Tier {
            tier: "starter".into(),
            products: products.iter().map(|p| (*p).to_owned()).collect(),
            contract_length_months: 1,
        };
        let mut plan = Subscription::new(
            SubscriptionId::for_plan(account),
            account,
            PartnerId::random(),
            ExternalId::parse("cust-1").unwrap(),
            BillingOwner::Partner,
            terms,
            "t0",
        );
        plan.installation = Some(Installation {
            website: "https://a.com/".into(),
            template: "t".into(),
            company_name: "A".into(),
            widget_key: "wk_1".into(),
            search_key: "sk_pub_1".into(),
        });
        plan
    }

    #[test]
    fn snippets_are_script_tags_carrying_their_keys() {
        let ready = ReadyForInstallation::for_plan(&plan(&["widget"]), "https://hub.example/");
        assert!(ready.widget_snippet.starts_with("<script"));
        assert!(ready.widget_snippet.contains(r#"data-key="wk_1""#));
        assert!(
            ready
                .widget_snippet
                .contains(r#"src="https://hub.example/widget.js""#)
        );
        assert_eq!(ready.search_key, "", "starter has no search");
        let ready =
            ReadyForInstallation::for_plan(&plan(&["widget", "search"]), "https://hub.example");
        assert!(ready.search_snippet.contains(r#"data-key="sk_pub_1""#));
    }
}
