//! Outbound calls that must happen at least once (partners' webhooks): a delivery is
//! written with the change that causes it (`Tx::put_new`), keeps one message id over
//! all its attempts, and is sent by the scheduled `outbound-deliveries` function from the
//! sparse `DueIndex`. A retryable failure (timeout, connection, 429 honouring
//! `Retry-After`, 5xx) schedules the next attempt on [`RETRY_SCHEDULE`]; a refusal or
//! another 4xx, or the schedule's end, leaves the delivery `failed` where operators list
//! it (`hub-admin deliveries`). No sleep anywhere: retries are due items.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{OutboundClient, OutboundError, OutboundRequest};
use crate::{
    clock,
    domain::AccountId,
    events::{EventPayload, HubEvent, WebhookAttempted},
    secrets::random_hex16,
    store::{
        Keys, Planned, Query, Record, StoreError, Table, Tx, TxError, UnitOfWork,
        keys::{self, Due},
    },
};

/// Pauses before the 2nd, 3rd, ... attempt (7 retries over about 27 hours).
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// Delivered records are kept this long (TTL), for the delivery log.
const DELIVERED_TTL_SECONDS: i64 = 30 * 86_400;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tx(#[from] TxError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

/// One outbound message and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The message id: the same on every attempt (e.g. the `webhook-id` header).
    pub id: String,
    /// What it is, for people (`webhook.usage_records`, ...).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    pub method: String,
    pub url: String,
    /// Headers that are not secret (secrets are added when sending, never stored).
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_latency_ms: Option<u64>,
    pub created_at: String,
    pub updated_at: String,
    pub revision: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl Record for Delivery {
    fn keys(&self) -> Keys {
        let keys = keys::delivery(&self.id);
        match (self.status, &self.next_attempt_at) {
            (DeliveryStatus::Pending, Some(at)) => keys.due(Due::Delivery, at.clone()),
            (DeliveryStatus::Failed, _) => keys.with_gsi1(
                keys::FAILED_DELIVERIES_GSI1PK,
                format!("{}#{}", self.updated_at, self.id),
            ),
            _ => keys,
        }
    }
}

impl Delivery {
    /// A new delivery of `request`, due at once; write it with the change causing it.
    pub fn new(kind: &str, account_id: Option<AccountId>, request: &OutboundRequest) -> Self {
        let now = clock::sortable(clock::now());
        Self {
            id: format!("msg_{}", random_hex16()),
            kind: kind.to_owned(),
            account_id,
            method: request.method.clone(),
            url: request.url.clone(),
            headers: request.headers.clone(),
            body: String::from_utf8_lossy(&request.body).into_owned(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: Some(now.clone()),
            last_status: None,
            last_error: None,
            last_latency_ms: None,
            created_at: now.clone(),
            updated_at: now,
            revision: 1,
            expires_at: None,
        }
    }

    /// The delivery log's entry for the attempt that made this record.
    pub fn attempted(
        &self,
        result: &Result<super::OutboundResponse, OutboundError>,
    ) -> WebhookAttempted {
        WebhookAttempted {
            delivery_id: self.id.clone(),
            kind: self.kind.clone(),
            attempt: self.attempts,
            outcome: match self.status {
                DeliveryStatus::Delivered => "delivered",
                DeliveryStatus::Pending => "retrying",
                DeliveryStatus::Failed => "failed",
            }
            .to_owned(),
            http_status: self.last_status,
            latency_ms: result.as_ref().ok().map(|r| r.latency.as_millis() as u64),
            error: self
                .last_error
                .as_ref()
                .map(|e| e.chars().take(300).collect()),
            next_attempt_at: self.next_attempt_at.clone(),
        }
    }

    fn request(&self) -> OutboundRequest {
        OutboundRequest {
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            secret_headers: Vec::new(),
            body: self.body.clone().into_bytes(),
        }
    }

    /// The record after one attempt that ended with `result` at `now`.
    pub fn after_attempt(
        &self,
        result: &Result<super::OutboundResponse, OutboundError>,
        now: OffsetDateTime,
    ) -> Self {
        let mut next = self.clone();
        next.attempts += 1;
        next.revision += 1;
        next.updated_at = clock::sortable(now);
        next.next_attempt_at = None;
        match result {
            Ok(response) => {
                next.status = DeliveryStatus::Delivered;
                next.last_status = Some(response.status);
                next.last_error = None;
                next.last_latency_ms = Some(response.latency.as_millis() as u64);
                next.expires_at = Some(now.unix_timestamp() + DELIVERED_TTL_SECONDS);
            }
            Err(error) => {
                next.last_error = Some(error.to_string());
                next.last_status = match error {
                    OutboundError::Retryable { status, .. } => *status,
                    OutboundError::Rejected { status, .. } => Some(*status),
                    OutboundError::Refused(_) => None,
                };
                let pause = RETRY_SCHEDULE.get(self.attempts as usize).copied();
                match (error, pause) {
                    (OutboundError::Retryable { retry_after, .. }, Some(pause)) => {
                        let wait = retry_after.map_or(pause, |after| after.max(pause));
                        next.next_attempt_at = Some(clock::sortable(now + wait));
                    }
                    _ => next.status = DeliveryStatus::Failed,
                }
            }
        }
        next
    }
}

/// What one run of due deliveries did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    pub due: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Deliveries that failed for good, oldest first (`hub-admin deliveries`).
pub async fn failed_deliveries(table: &Table) -> Result<Vec<Delivery>, DeliveryError> {
    Ok(table
        .query_all(&Query::gsi1(keys::FAILED_DELIVERIES_GSI1PK))
        .await?)
}

#[derive(Clone, Debug)]
pub struct Deliveries {
    uow: UnitOfWork,
    client: OutboundClient,
    /// Adds partners' webhooks' secret headers to each attempt.
    signer: Option<crate::partner_webhooks::WebhookSigner>,
}

impl Deliveries {
    pub fn new(uow: UnitOfWork, client: OutboundClient) -> Self {
        Self {
            uow,
            client,
            signer: None,
        }
    }

    /// Signs partners' webhooks (bearer shop secret key, Standard Webhooks headers).
    pub fn with_signer(mut self, signer: crate::partner_webhooks::WebhookSigner) -> Self {
        self.signer = Some(signer);
        self
    }

    /// One attempt: the stored request, with the attempt's secret headers; for partners'
    /// webhooks, the partner whose endpoint it went to and whether that endpoint was failing.
    async fn attempt(
        &self,
        delivery: &Delivery,
    ) -> (
        Result<super::OutboundResponse, OutboundError>,
        Option<(crate::domain::PartnerId, bool)>,
    ) {
        let mut request = delivery.request();
        let mut partner = None;
        if let Some(signer) = &self.signer {
            match signer.prepare(delivery).await {
                Ok(Some(signed)) => {
                    request.secret_headers = signed.headers;
                    partner = Some((signed.partner, signed.endpoint_failing));
                }
                Ok(None) => {}
                Err(e) => return (Err(e), None),
            }
        }
        (self.client.send(request).await, partner)
    }

    /// Writes a delivery on its own (callers with a change put it in their `Tx`).
    pub async fn enqueue(&self, delivery: &Delivery) -> Result<(), DeliveryError> {
        self.uow
            .apply(|| async {
                let mut tx = Tx::new();
                tx.put_new(delivery)?;
                Ok::<_, DeliveryError>(Planned::new(tx, ()))
            })
            .await
    }

    pub async fn get(&self, id: &str) -> Result<Option<Delivery>, DeliveryError> {
        Ok(self.uow.table().get(&keys::delivery(id)).await?)
    }

    /// Deliveries that failed for good, oldest first.
    pub async fn failed(&self) -> Result<Vec<Delivery>, DeliveryError> {
        failed_deliveries(self.uow.table()).await
    }

    /// Attempts every delivery due at `now`.
    pub async fn deliver_due(&self, now: OffsetDateTime) -> Result<DeliveryReport, DeliveryError> {
        let due: Vec<Delivery> = self
            .uow
            .table()
            .query_all(&Query::due(Due::Delivery, clock::sortable(now)))
            .await?;
        let mut report = DeliveryReport {
            due: due.len(),
            ..DeliveryReport::default()
        };
        for delivery in due {
            let (mut result, signed) = self.attempt(&delivery).await;
            let partner = signed.map(|(partner, _)| partner);
            // A change request's answer must be `{confirmationUrl}`; anything else fails.
            let mut confirmation = None;
            if delivery.kind == crate::partner_webhooks::CHANGE_REQUEST
                && let Ok(response) = &result
            {
                match crate::partner_webhooks::confirmation_url(&response.body) {
                    Ok(url) => confirmation = Some(url),
                    Err(why) => {
                        result = Err(OutboundError::Rejected {
                            status: response.status,
                            excerpt: format!("malformed answer: {why}"),
                        })
                    }
                }
            }
            // The endpoint's health: recorded on a failure, or on the success that ends
            // a failing streak (a healthy endpoint's success costs nothing).
            if let Some((partner, failing)) = signed
                && (failing || result.is_err())
            {
                let failure = result.as_ref().err().map(|e| e.to_string());
                if let Err(e) = crate::partner_webhooks::record_outcome(
                    &self.uow,
                    partner,
                    failure.as_deref(),
                    now,
                )
                .await
                {
                    tracing::warn!(%partner, error = %e, "a webhook endpoint's health was not recorded");
                }
            }
            let next = delivery.after_attempt(&result, now);
            // Recorded only if nobody else attempted it meanwhile (at least once), with
            // the shop's delivery log entry and what the attempt settles.
            let recorded = self
                .uow
                .apply(|| async {
                    let mut tx = Tx::new();
                    tx.put_revision(&next, Some(delivery.revision))?;
                    if let Some(account) = next.account_id {
                        let mut event =
                            HubEvent::new(EventPayload::WebhookAttempted(next.attempted(&result)));
                        event.account_id = Some(account);
                        event.partner_id = partner;
                        tx.event(event);
                    }
                    if let Some(settled) = crate::partner_webhooks::settled_change_request(
                        self.uow.table(),
                        &next,
                        confirmation.clone(),
                    )
                    .await?
                    {
                        tx.put(&settled)?;
                    }
                    Ok::<_, DeliveryError>(Planned::new(tx, ()))
                })
                .await;
            if let Err(e) = recorded {
                tracing::warn!(delivery = %delivery.id, error = %e, "a delivery's result was not recorded");
                continue;
            }
            match next.status {
                DeliveryStatus::Delivered => report.delivered += 1,
                DeliveryStatus::Pending => report.retrying += 1,
                DeliveryStatus::Failed => {
                    tracing::error!(delivery = %next.id, kind = %next.kind, error = ?next.last_error, "a delivery failed for good");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> Delivery {
        Delivery::new(
            "webhook.test",
            None,
            &OutboundRequest::post_json("https://partner.example.com/hook", &serde_json::json!({})),
        )
    }

    #[test]
    fn retries_follow_the_schedule_and_honour_retry_after_then_fail() {
        let now = clock::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let busy = Err(OutboundError::Retryable {
            reason: "503".into(),
            status: Some(503),
            retry_after: None,
            maybe_delivered: true,
        });
        let mut d = delivery();
        for (i, pause) in RETRY_SCHEDULE.iter().enumerate() {
            d = d.after_attempt(&busy, now);
            assert_eq!(d.status, DeliveryStatus::Pending, "attempt {}", i + 1);
            assert_eq!(d.next_attempt_at, Some(clock::sortable(now + *pause)));
            assert_eq!(d.keys().due_pk.as_deref(), Some("DELIVERY"));
        }
        d = d.after_attempt(&busy, now);
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert_eq!(d.attempts, 8);
        assert_eq!(d.keys().due_pk, None, "leaves the due index");
        assert_eq!(
            d.keys().gsi1pk.as_deref(),
            Some(keys::FAILED_DELIVERIES_GSI1PK)
        );

        let throttled = Err(OutboundError::Retryable {
            reason: "429".into(),
            status: Some(429),
            retry_after: Some(Duration::from_secs(120)),
            maybe_delivered: false,
        });
        let d = delivery().after_attempt(&throttled, now);
        assert_eq!(
            d.next_attempt_at,
            Some(clock::sortable(now + Duration::from_secs(120)))
        );
        let rejected = Err(OutboundError::Rejected {
            status: 410,
            excerpt: String::new(),
        });
        assert_eq!(
            delivery().after_attempt(&rejected, now).status,
            DeliveryStatus::Failed
        );
    }
}
