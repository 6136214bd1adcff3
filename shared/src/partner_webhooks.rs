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
    events::{EventPayload, HubEvent, PartnerWebhookDisabled, SubscriptionChangeRequested},
    outbound::{OutboundError, OutboundRequest, check_url, delivery::Delivery},
    partners::{Partner, PartnerError, PartnerWebhook},
    secrets::{SecretError, SecretSealer},
    store::{Keys, Planned, Query, Record, Tx, TxError, UnitOfWork},
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
    /// Whether the endpoint was failing when the attempt started: a success then has a
    /// streak to clear; otherwise it changes nothing and costs no write or read.
    pub endpoint_failing: bool,
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

/// The usage webhook of one shop's metered day (`{usageRecords: [...]}`), or `None` when
/// the partner has no endpoint or the day has no records.
pub fn usage_delivery(
    partner: &Partner,
    account: AccountId,
    records: &[crate::usage::MeteredRecord],
) -> Option<Delivery> {
    if records.is_empty() {
        return None;
    }
    let wire: Vec<_> = records.iter().map(|r| &r.record).collect();
    let body = serde_json::json!({ "usageRecords": wire });
    delivery(partner, account, USAGE_RECORDS, USAGE_RECORDS_PATH, &body)
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
            endpoint_failing: endpoint.failing_since.is_some(),
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
        for day in days {
            let Some(mut resend) = usage_delivery(&record, shop.id, &day.records) else {
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

/// Where a change request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeRequestStatus {
    /// Being delivered (retried on the schedule).
    Sent,
    /// The partner answered a `confirmationUrl`: the shop's user confirms there.
    AwaitingConfirmation,
    /// Not delivered, or the answer was not `{confirmationUrl}`.
    Failed,
}

/// A subscription change request (contract 5.2): the subscriptions the shop should be
/// on, sent as `POST <base>/releva/subscriptions {subscriptionIds}`; the partner's
/// answer `{confirmationUrl}` is kept and shown on the admin page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangeRequest {
    pub account_id: AccountId,
    /// The message id of its webhook.
    pub id: String,
    pub subscription_ids: Vec<u32>,
    pub reason: String,
    pub status: ChangeRequestStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Record for ChangeRequest {
    fn keys(&self) -> Keys {
        keys::change_request(self.account_id, &self.id)
    }
}

/// Stages a change request in `tx`: its record, its webhook and
/// `subscription_change.requested`. `None` when the partner has no endpoint.
pub fn stage_change_request(
    tx: &mut Tx,
    partner: &Partner,
    account: AccountId,
    subscription_ids: Vec<u32>,
    reason: String,
) -> Result<Option<ChangeRequest>, StoreError> {
    let body = serde_json::json!({ "subscriptionIds": subscription_ids });
    let Some(delivery) = delivery(partner, account, CHANGE_REQUEST, CHANGE_REQUEST_PATH, &body)
    else {
        return Ok(None);
    };
    let now = clock::sortable(clock::now());
    let request = ChangeRequest {
        account_id: account,
        id: delivery.id.clone(),
        subscription_ids: subscription_ids.clone(),
        reason: reason.clone(),
        status: ChangeRequestStatus::Sent,
        confirmation_url: None,
        failure: None,
        created_at: now.clone(),
        updated_at: now,
    };
    tx.put_new(&request)?.put_new(&delivery)?.event(
        HubEvent::new(EventPayload::SubscriptionChangeRequested(
            SubscriptionChangeRequested {
                request_id: request.id.clone(),
                subscription_ids,
                reason,
            },
        ))
        .for_account(account, partner.id),
    );
    Ok(Some(request))
}

/// The shop's change requests, newest first (at most `limit`).
pub async fn change_requests(
    table: &Table,
    account: AccountId,
    limit: usize,
) -> Result<Vec<ChangeRequest>, StoreError> {
    let mut requests: Vec<ChangeRequest> = table
        .query_all(
            &Query::partition(keys::account_partition(account))
                .sort_begins_with(keys::CHANGE_REQUEST_PREFIX),
        )
        .await?;
    requests.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    requests.truncate(limit);
    Ok(requests)
}

/// The partner's answer to a change request: `{"confirmationUrl": "https://..."}`.
pub fn confirmation_url(body: &[u8]) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        confirmation_url: String,
    }
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| format!("the answer is not {{\"confirmationUrl\": \"https://...\"}}: {e}"))?;
    let url = url::Url::parse(answer.confirmation_url.trim())
        .map_err(|e| format!("confirmationUrl is not a URL: {e}"))?;
    if url.scheme() != "https" || url.host_str().is_none() || url.as_str().len() > 2048 {
        return Err("confirmationUrl must be an https URL of at most 2048 characters".into());
    }
    Ok(url.to_string())
}

/// Settles a change request once its webhook is delivered (with a good answer) or has
/// failed for good; `None` while it is retried or is another kind of delivery.
pub async fn settled_change_request(
    table: &Table,
    delivery: &Delivery,
    confirmation: Option<String>,
) -> Result<Option<ChangeRequest>, StoreError> {
    use crate::outbound::delivery::DeliveryStatus;
    let Some(account) = delivery
        .account_id
        .filter(|_| delivery.kind == CHANGE_REQUEST)
    else {
        return Ok(None);
    };
    let Some(mut request) = table
        .get::<ChangeRequest>(&keys::change_request(account, &delivery.id))
        .await?
    else {
        return Ok(None);
    };
    match (delivery.status, confirmation) {
        (DeliveryStatus::Delivered, Some(url)) => {
            request.status = ChangeRequestStatus::AwaitingConfirmation;
            request.confirmation_url = Some(url);
        }
        (DeliveryStatus::Failed, _) => {
            request.status = ChangeRequestStatus::Failed;
            request.failure = delivery.last_error.clone();
        }
        _ => return Ok(None),
    }
    request.updated_at = delivery.updated_at.clone();
    Ok(Some(request))
}
