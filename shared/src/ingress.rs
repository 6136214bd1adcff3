//! The partners' ingress bus: the one bus other AWS accounts may put events on. Each
//! partner gets one statement in its policy, admitting only its own accounts and only
//! with its own `source` (a condition on `events:source`); `partner-hub` is never a
//! partner's source, and the hub's internal bus admits no other account at all, so no
//! partner can forge the hub's events or another partner's. Sources are bound at run
//! time (`hub-admin set-events`), so the statements are kept here, not in the template.

use serde_json::{Value, json};

use crate::{
    domain::{AwsAccountId, PartnerId},
    events::{EventError, HUB_EVENT_SOURCE},
};

/// The partner an event on the ingress bus comes from: its `source` must be registered,
/// and the envelope's `account` (stamped by EventBridge, unforgeable) one the partner
/// bound to that source. Anything else is parked; a failed lookup is retried.
pub async fn sending_partner(
    hub: &crate::Hub,
    source: &str,
    account: Option<&str>,
) -> Result<crate::partners::PartnerRoute, crate::runtime::Failure> {
    use crate::runtime::Failure;
    let route = hub
        .partners
        .route_for_source(source)
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?
        .ok_or_else(|| {
            Failure::Park(format!(
                "source '{source}' is not registered to any partner"
            ))
        })?;
    if !route.admits(account) {
        return Err(Failure::Park(format!(
            "source '{source}' is not bound to account {} (see hub-admin set-events --account)",
            account.unwrap_or("(none)")
        )));
    }
    Ok(route)
}

/// The statement id of a partner's statement.
pub fn statement_id(partner: PartnerId) -> String {
    format!("partner-{}", partner.as_uuid().simple())
}

/// The statement that lets a partner's accounts put events with its source.
pub fn partner_statement(
    bus_arn: &str,
    partner: PartnerId,
    source: &str,
    accounts: &[AwsAccountId],
) -> Result<Value, String> {
    if source == HUB_EVENT_SOURCE || source.starts_with("aws.") {
        return Err(format!("'{source}' cannot be a partner's source"));
    }
    if accounts.is_empty() {
        return Err("a statement needs at least one account".into());
    }
    let principals: Vec<String> = accounts
        .iter()
        .map(|a| format!("arn:aws:iam::{a}:root"))
        .collect();
    Ok(json!({
        "Sid": statement_id(partner),
        "Effect": "Allow",
        "Principal": {"AWS": principals},
        "Action": "events:PutEvents",
        "Resource": bus_arn,
        "Condition": {"StringEquals": {"events:source": [source]}},
    }))
}

/// The bus policy with the partner's statement replaced (or removed with `None`).
pub fn policy_with(existing: Option<&str>, sid: &str, statement: Option<Value>) -> Value {
    let mut statements: Vec<Value> = existing
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .and_then(|policy| policy.get("Statement").cloned())
        .map(|s| match s {
            Value::Array(items) => items,
            one => vec![one],
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.get("Sid").and_then(Value::as_str) != Some(sid))
        .collect();
    statements.extend(statement);
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The ingress bus of this deployment.
#[derive(Clone, Debug)]
pub struct IngressBus {
    client: aws_sdk_eventbridge::Client,
    name: String,
}

fn sdk_error(e: impl std::fmt::Display) -> EventError {
    EventError::EventBridge(e.to_string())
}

impl IngressBus {
    pub fn new(client: aws_sdk_eventbridge::Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    /// The bus's ARN and current policy.
    pub async fn describe(&self) -> Result<(String, Option<String>), EventError> {
        let out = self
            .client
            .describe_event_bus()
            .name(&self.name)
            .send()
            .await
            .map_err(|e| sdk_error(aws_sdk_eventbridge::error::DisplayErrorContext(e)))?;
        let arn = out.arn.ok_or_else(|| sdk_error("the bus has no ARN"))?;
        Ok((arn, out.policy))
    }

    /// Admits the partner's accounts with its source (replacing its earlier statement).
    pub async fn allow(
        &self,
        partner: PartnerId,
        source: &str,
        accounts: &[AwsAccountId],
    ) -> Result<Value, EventError> {
        let (arn, policy) = self.describe().await?;
        let statement = partner_statement(&arn, partner, source, accounts).map_err(sdk_error)?;
        let policy = policy_with(policy.as_deref(), &statement_id(partner), Some(statement));
        self.client
            .put_permission()
            .event_bus_name(&self.name)
            .policy(policy.to_string())
            .send()
            .await
            .map_err(|e| sdk_error(aws_sdk_eventbridge::error::DisplayErrorContext(e)))?;
        Ok(policy)
    }

    /// Removes the partner's statement: its accounts may no longer put events here.
    pub async fn revoke(&self, partner: PartnerId) -> Result<(), EventError> {
        let (_, policy) = self.describe().await?;
        let sid = statement_id(partner);
        let admitted = policy
            .as_deref()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|p| p.get("Statement").and_then(Value::as_array).cloned())
            .is_some_and(|statements| statements.iter().any(|s| s["Sid"] == sid.as_str()));
        if !admitted {
            return Ok(());
        }
        self.client
            .remove_permission()
            .event_bus_name(&self.name)
            .statement_id(sid)
            .send()
            .await
            .map_err(|e| sdk_error(aws_sdk_eventbridge::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUS: &str = "arn:aws:events:us-east-1:123456789012:event-bus/partner-hub-ingress-dev";

    #[test]
    fn each_partner_is_admitted_with_its_own_source_only() {
        let a = PartnerId::random();
        let b = PartnerId::random();
        let account = |s: &str| AwsAccountId::parse(s).unwrap();
        let first = partner_statement(BUS, a, "partner.a", &[account("111122223333")]).unwrap();
        assert_eq!(
            first["Condition"]["StringEquals"]["events:source"],
            json!(["partner.a"])
        );
        assert_eq!(
            first["Principal"]["AWS"],
            json!(["arn:aws:iam::111122223333:root"])
        );
        let policy = policy_with(None, &statement_id(a), Some(first));
        let second = partner_statement(BUS, b, "partner.b", &[account("444455556666")]).unwrap();
        let policy = policy_with(Some(&policy.to_string()), &statement_id(b), Some(second));
        assert_eq!(policy["Statement"].as_array().unwrap().len(), 2);
        // A new source replaces the partner's statement.
        let moved = partner_statement(BUS, a, "partner.a2", &[account("111122223333")]).unwrap();
        let policy = policy_with(Some(&policy.to_string()), &statement_id(a), Some(moved));
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        for statement in statements {
            let sources = &statement["Condition"]["StringEquals"]["events:source"];
            assert!(sources.is_array() && !sources.to_string().contains("partner-hub"));
        }
        let revoked = policy_with(Some(&policy.to_string()), &statement_id(a), None);
        assert_eq!(revoked["Statement"].as_array().unwrap().len(), 1);
        assert!(partner_statement(BUS, a, "partner-hub", &[account("111122223333")]).is_err());
        assert!(partner_statement(BUS, a, "aws.events", &[account("111122223333")]).is_err());
        assert!(partner_statement(BUS, a, "partner.a", &[]).is_err());
    }
}
