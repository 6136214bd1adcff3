//! Webhooks the hub sends to partners (signed-payload contract, step 5): usage records
//! (`POST <base>/releva/webhooks/usageRecords`) and subscription change requests
//! (`POST <base>/releva/subscriptions`), each a [`Delivery`] (one message id over every
//! attempt, retried as due items). At send time, never stored, each attempt gets what
//! the contract asks, `authorization: Bearer <shopSecretKey>`, and Standard Webhooks
//! signature headers with the partner's signing secret (`webhook-id` is the message id,
//! `webhook-timestamp` the attempt's time), so the partner can verify the sender and
//! refuse replays older than five minutes.

use time::OffsetDateTime;

use crate::{
    accounts::Accounts,
    clock,
    domain::{AccountId, PartnerId},
    events::{EventPayload, HubEvent, PartnerWebhookDisabled},
    outbound::{OutboundError, OutboundRequest, check_url, delivery::Delivery},
    partners::{Partner, PartnerError, PartnerWebhook},
    secrets::{SecretError, SecretSealer},
    store::{Planned, Tx, TxError, UnitOfWork},
    store::{StoreError, Table, keys},
    usage::MeteredDay,
    webhooks,
};

pub const USAGE_RECORDS_PATH: &str = "/releva/webhooks/usageRecords";
pub const CHANGE_REQUEST_PATH: &str = "/releva/subscriptions";
/// Delivery kinds of partners' webhooks (the signer adds their headers).
pub const USAGE_RECORDS: &str = "webhook.usage_records";
pub const CHANGE_REQUEST: &str = "webhook.subscription_change_request";
/// An endpoint failing every attempt this long is disabled.
pub const DISABLE_AFTER: time::Duration = time::Duration::days(5);

/// One attempt's secret headers, and whose endpoint it goes to.
#[derive(Debug)]
pub struct Signed {
    pub headers: Vec<(String, String)>,
    pub partner: PartnerId,
}

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
        failing_since: None,
        last_failure: None,
        disabled_at: None,
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
    /// A disabled endpoint is refused without a call.
    pub async fn prepare(&self, delivery: &Delivery) -> Result<Option<Signed>, OutboundError> {
        if ![USAGE_RECORDS, CHANGE_REQUEST].contains(&delivery.kind.as_str()) {
            return Ok(None);
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
        if let Some(at) = &endpoint.disabled_at {
            return Err(OutboundError::Refused(format!(
                "the partner's webhook endpoint is disabled since {at} (hub-admin enable-webhook)"
            )));
        }
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
        Ok(Some(Signed {
            headers: vec![
                (
                    "authorization".into(),
                    format!("Bearer {}", credentials.secret_key),
                ),
                (webhooks::ID_HEADER.into(), delivery.id.clone()),
                (webhooks::TIMESTAMP_HEADER.into(), timestamp.to_string()),
                (webhooks::SIGNATURE_HEADER.into(), signature),
            ],
            partner: partner.id,
        }))
    }
}

/// Keeps each partner endpoint's health: a success clears its failing streak; a streak
/// of [`DISABLE_AFTER`] disables it, with `partner.webhook_disabled` for operators. The
/// partner record is written only when that state changes.
pub async fn record_outcome(
    uow: &UnitOfWork,
    partner: PartnerId,
    failure: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), TxError> {
    uow.apply(|| async {
        let Some(mut record) = uow
            .table()
            .get::<Partner>(&keys::partner(partner))
            .await
            .map_err(TxError::from)?
        else {
            return Ok(Planned::nothing(()));
        };
        let Some(endpoint) = record.webhook.as_mut() else {
            return Ok(Planned::nothing(()));
        };
        let mut tx = Tx::new();
        match failure {
            None if endpoint.failing_since.is_none() => return Ok(Planned::nothing(())),
            None => {
                endpoint.failing_since = None;
                endpoint.last_failure = None;
            }
            Some(_) if endpoint.disabled_at.is_some() => return Ok(Planned::nothing(())),
            Some(why) => {
                let since = endpoint
                    .failing_since
                    .get_or_insert_with(|| clock::sortable(now))
                    .clone();
                endpoint.last_failure = Some(why.chars().take(300).collect());
                let failing_for = clock::parse_rfc3339(&since).map(|at| now - at);
                if failing_for.is_some_and(|d| d >= DISABLE_AFTER) {
                    endpoint.disabled_at = Some(clock::sortable(now));
                    tracing::error!(%partner, url = %endpoint.base_url, %since, "a partner's webhook endpoint was disabled after failing for 5 days");
                    tx.event(HubEvent {
                        partner_id: Some(partner),
                        ..HubEvent::new(EventPayload::PartnerWebhookDisabled(
                            PartnerWebhookDisabled {
                                base_url: endpoint.base_url.clone(),
                                failing_since: since,
                                last_failure: why.chars().take(300).collect(),
                            },
                        ))
                    });
                } else if failing_for.is_some_and(|d| d > time::Duration::ZERO) {
                    // Mid-streak: the start and the latest failure are kept already
                    // enough; writing each failure would make every attempt a write.
                    return Ok(Planned::nothing(()));
                }
            }
        }
        tx.put(&record).map_err(TxError::from)?;
        Ok::<_, TxError>(Planned::new(tx, ()))
    })
    .await
}

/// What enabling an endpoint did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Enabled {
    /// Metered days whose usage records are sent again.
    pub replayed: usize,
}

/// Turns a partner's endpoint back on; with `replay_since`, sends again the usage records
/// of every shop's days from that date, each under its first message id (the partner
/// deduplicates on `webhook-id`), whether it was delivered or not.
pub async fn enable(
    uow: &UnitOfWork,
    accounts: &Accounts,
    partner: PartnerId,
    replay_since: Option<time::Date>,
) -> Result<Enabled, PartnerError> {
    let table = uow.table();
    let mut record: Partner = table
        .get(&keys::partner(partner))
        .await?
        .ok_or(PartnerError::UnknownPartner(partner))?;
    let Some(endpoint) = record.webhook.as_mut() else {
        return Err(PartnerError::InvalidRoute(
            "the partner has no webhook endpoint (hub-admin set-webhook)".into(),
        ));
    };
    endpoint.disabled_at = None;
    endpoint.failing_since = None;
    endpoint.last_failure = None;
    table.put(&record).await?;
    let mut enabled = Enabled::default();
    let Some(since) = replay_since else {
        return Ok(enabled);
    };
    let shops = accounts
        .list_for_partner(partner)
        .await
        .map_err(|e| StoreError::Dynamo(e.to_string()))?;
    for shop in shops {
        let days: Vec<MeteredDay> = table
            .query_all(
                &crate::store::Query::partition(keys::account_partition(shop.id)).sort_between(
                    format!(
                        "{}{}",
                        keys::USAGE_DAY_PREFIX,
                        crate::analytics::day_string(since)
                    ),
                    format!("{}9999-12-31", keys::USAGE_DAY_PREFIX),
                ),
            )
            .await?;
        for day in days.into_iter().filter(|d| !d.records.is_empty()) {
            let wire: Vec<_> = day.records.iter().map(|r| &r.record).collect();
            let body = serde_json::json!({ "usageRecords": wire });
            let Some(mut resend) =
                delivery(&record, shop.id, USAGE_RECORDS, USAGE_RECORDS_PATH, &body)
            else {
                continue;
            };
            if let Some(id) = &day.delivery_id {
                resend.id = id.clone();
            }
            // Replaces what is left of the earlier delivery (failed, delivered or gone).
            table.put(&resend).await?;
            enabled.replayed += 1;
        }
    }
    Ok(enabled)
}
