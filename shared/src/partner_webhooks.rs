//! Webhooks the hub sends to partners (signed-payload contract, step 5): usage records
//! (`POST <base>/releva/webhooks/usageRecords`) and subscription change requests
//! (`POST <base>/releva/subscriptions`), each a [`Delivery`] (one message id over every
//! attempt, retried as due items). At send time, never stored, each attempt gets what
//! the contract asks, `authorization: Bearer <shopSecretKey>`, and Standard Webhooks
//! signature headers with the partner's signing secret (`webhook-id` is the message id,
//! `webhook-timestamp` the attempt's time), so the partner can verify the sender and
//! refuse replays older than five minutes.

use crate::{
    accounts::Accounts,
    clock,
    domain::{AccountId, PartnerId},
    outbound::{OutboundError, OutboundRequest, check_url, delivery::Delivery},
    partners::{Partner, PartnerError, PartnerWebhook},
    secrets::{SecretError, SecretSealer},
    store::{StoreError, Table, keys},
    webhooks,
};

pub const USAGE_RECORDS_PATH: &str = "/releva/webhooks/usageRecords";
pub const CHANGE_REQUEST_PATH: &str = "/releva/subscriptions";
/// Delivery kinds of partners' webhooks (the signer adds their headers).
pub const USAGE_RECORDS: &str = "webhook.usage_records";
pub const CHANGE_REQUEST: &str = "webhook.subscription_change_request";

fn secret_record(partner: PartnerId) -> String {
    format!("partner:{partner}")
}

/// Registers (or replaces) the partner's webhook base URL with a new signing secret,
/// returned once (sealed with KMS; only the partner and the sender ever see it).
pub async fn set_endpoint(
    table: &Table,
    sealer: &SecretSealer,
    partner: PartnerId,
    base_url: &str,
) -> Result<String, PartnerError> {
    let url = url::Url::parse(base_url.trim())
        .map_err(|e| PartnerError::InvalidRoute(format!("the webhook URL: {e}")))?;
    check_url(&url).map_err(|e| PartnerError::InvalidRoute(format!("the webhook URL: {e}")))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(PartnerError::InvalidRoute(
            "the webhook URL takes no query or fragment".into(),
        ));
    }
    let mut record: Partner = table
        .get(&keys::partner(partner))
        .await?
        .ok_or(PartnerError::UnknownPartner(partner))?;
    let secret = webhooks::new_secret();
    let sealed = sealer
        .seal(&secret, &secret_record(partner), "webhook_secret")
        .await
        .map_err(|e| StoreError::Dynamo(e.to_string()))?;
    record.webhook = Some(PartnerWebhook {
        base_url: url.as_str().trim_end_matches('/').to_owned(),
        secret_sealed: sealed,
        updated_at: clock::sortable(clock::now()),
    });
    table.put(&record).await?;
    Ok(secret)
}

/// A webhook to the partner about one of its shops, or `None` when the partner has no
/// endpoint (write it with the change that causes it).
pub fn delivery(
    partner: &Partner,
    account: AccountId,
    kind: &str,
    path: &str,
    body: &serde_json::Value,
) -> Option<Delivery> {
    let endpoint = partner.webhook.as_ref()?;
    let request = OutboundRequest::post_json(format!("{}{path}", endpoint.base_url), body);
    Some(Delivery::new(kind, Some(account), &request))
}

/// Adds each attempt's secret headers to partners' webhooks.
#[derive(Clone, Debug)]
pub struct WebhookSigner {
    table: Table,
    accounts: Accounts,
    sealer: SecretSealer,
}

impl WebhookSigner {
    pub fn new(table: Table, accounts: Accounts) -> Self {
        let sealer = accounts.sealer().clone();
        Self {
            table,
            accounts,
            sealer,
        }
    }

    /// The headers of one attempt of `delivery`, timestamped with the time it is sent
    /// (the partner compares it with its clock); none for other deliveries.
    /// A refusal means it can never be signed (its shop or partner is gone); a KMS or
    /// table failure is retryable.
    pub async fn headers(
        &self,
        delivery: &Delivery,
    ) -> Result<Vec<(String, String)>, OutboundError> {
        if ![USAGE_RECORDS, CHANGE_REQUEST].contains(&delivery.kind.as_str()) {
            return Ok(Vec::new());
        }
        let retry = |why: String| OutboundError::Retryable {
            reason: why,
            status: None,
            retry_after: None,
            maybe_delivered: false,
        };
        let account_id = delivery
            .account_id
            .ok_or_else(|| OutboundError::Refused("a partner webhook without a shop".into()))?;
        let account = self
            .accounts
            .get(account_id)
            .await
            .map_err(|e| retry(e.to_string()))?
            .ok_or_else(|| OutboundError::Refused("the shop no longer exists".into()))?;
        let partner: Partner = self
            .table
            .get(&keys::partner(account.partner_id))
            .await
            .map_err(|e: StoreError| retry(e.to_string()))?
            .ok_or_else(|| OutboundError::Refused("the partner no longer exists".into()))?;
        let endpoint = partner
            .webhook
            .as_ref()
            .ok_or_else(|| OutboundError::Refused("the partner has no webhook endpoint".into()))?;
        let (credentials, secret) = tokio::try_join!(
            async {
                self.accounts
                    .open_credentials(&account)
                    .await
                    .map_err(|e| retry(e.to_string()))
            },
            async {
                self.sealer
                    .open(
                        &endpoint.secret_sealed,
                        &secret_record(partner.id),
                        "webhook_secret",
                    )
                    .await
                    .map_err(|e: SecretError| retry(e.to_string()))
            },
        )?;
        let timestamp = clock::now().unix_timestamp();
        let signature = webhooks::sign(&secret, &delivery.id, timestamp, delivery.body.as_bytes())
            .map_err(|e| OutboundError::Refused(e.to_string()))?;
        Ok(vec![
            (
                "authorization".into(),
                format!("Bearer {}", credentials.secret_key),
            ),
            (webhooks::ID_HEADER.into(), delivery.id.clone()),
            (webhooks::TIMESTAMP_HEADER.into(), timestamp.to_string()),
            (webhooks::SIGNATURE_HEADER.into(), signature),
        ])
    }
}
