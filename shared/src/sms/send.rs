//! The send pipeline of the cron-scheduled `sms-trigger`: every site's due jobs (its own
//! `DueIndex` shard, never a scan), each **claimed with a conditional write before the
//! gateway is called** (the index is eventually consistent and runs may overlap), sent
//! concurrently under the site's rate limit, and ended: sent, skipped with the reason,
//! deferred (quiet hours, a gateway that was not reached) or parked for an operator.
//!
//! The gateway takes no idempotency key, so a send is **at most once**: a call that never
//! reached it (connection refused, 429) is due again; one that may have (a timeout, a
//! 5xx, a run that died holding the claim) is parked as `unknown` instead of risking a
//! second SMS. A run stops taking new work at its deadline and leaves the rest due.

use std::{
    collections::HashMap,
    future::Future,
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt;
use governor::{Quota, RateLimiter};
use serde::Serialize;
use time::OffsetDateTime;

use super::{
    JobStatus, MemberStatus, OpenTokens, Sms, SmsError, SmsJob, SmsMember, SmsSite,
    gateway::{Gateway, GatewayUser, text_eligible},
    segments,
};
use crate::{
    clock,
    events::{EventPayload, HubEvent, SmsSent},
    outbound::OutboundError,
    store::{
        Keys, Query, Tx,
        keys::{self, Due},
    },
};

/// What the send pipeline reads and writes: DynamoDB through [`DynamoJobs`] in the
/// functions; an in-process store in `hub-bench sms` (the emulator cannot carry 20,000
/// jobs: it deep-copies the table on every transaction).
pub trait JobStore: Send + Sync {
    /// Every site.
    fn sites(&self) -> impl Future<Output = Result<Vec<SmsSite>, SmsError>> + Send;
    /// At most `limit` of a site's jobs due at or before `until` (sortable time).
    fn due(
        &self,
        site: &SmsSite,
        until: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<SmsJob>, SmsError>> + Send;
    /// The site's members with these numbers (E.164), by number.
    fn members(
        &self,
        site: &SmsSite,
        phones: &[&str],
    ) -> impl Future<Output = Result<HashMap<String, SmsMember>, SmsError>> + Send;
    fn tokens(&self, site: &SmsSite) -> impl Future<Output = Result<OpenTokens, SmsError>> + Send;
    /// Writes a job under its revision (`false`: another run changed it), with its event.
    fn write(
        &self,
        job: &SmsJob,
        expected: Option<u64>,
        event: Option<HubEvent>,
    ) -> impl Future<Output = Result<bool, SmsError>> + Send;
    /// Caches a member's TEXT eligibility (`member`: as the run read it).
    fn remember_eligibility(
        &self,
        site: &SmsSite,
        job: &SmsJob,
        member: Option<&SmsMember>,
        eligible: bool,
    ) -> impl Future<Output = Result<(), SmsError>> + Send;
}

/// The pipeline's store on DynamoDB: each job write is one conditional transaction,
/// with its `sms.sent` event in the outbox item the relay publishes off this path.
#[derive(Debug)]
pub struct DynamoJobs {
    sms: Sms,
}

impl DynamoJobs {
    pub fn new(sms: Sms) -> Self {
        Self { sms }
    }
}

impl JobStore for DynamoJobs {
    async fn sites(&self) -> Result<Vec<SmsSite>, SmsError> {
        self.sms.sites().await
    }

    async fn due(
        &self,
        site: &SmsSite,
        until: &str,
        limit: usize,
    ) -> Result<Vec<SmsJob>, SmsError> {
        let query = Query::due_in_shard(Due::Sms, &site.site_id.to_string(), until);
        let (jobs, _) = self
            .sms
            .uow()
            .table()
            .query_page(&query, limit, None)
            .await?;
        Ok(jobs)
    }

    async fn members(
        &self,
        site: &SmsSite,
        phones: &[&str],
    ) -> Result<HashMap<String, SmsMember>, SmsError> {
        let keys: Vec<Keys> = phones
            .iter()
            .map(|p| keys::sms_member(site.account_id, p))
            .collect();
        Ok(self
            .sms
            .uow()
            .table()
            .get_many::<SmsMember>(&keys)
            .await?
            .into_iter()
            .map(|m| (m.phone.as_str().to_owned(), m))
            .collect())
    }

    async fn tokens(&self, site: &SmsSite) -> Result<OpenTokens, SmsError> {
        self.sms.open_tokens(site).await
    }

    async fn write(
        &self,
        job: &SmsJob,
        expected: Option<u64>,
        event: Option<HubEvent>,
    ) -> Result<bool, SmsError> {
        let mut tx = Tx::new();
        tx.put_revision(job, expected)?;
        if let Some(event) = event {
            tx.event(event);
        }
        Ok(self.sms.uow().commit_once(tx).await?)
    }

    async fn remember_eligibility(
        &self,
        site: &SmsSite,
        job: &SmsJob,
        member: Option<&SmsMember>,
        eligible: bool,
    ) -> Result<(), SmsError> {
        let status = member.map_or(MemberStatus::Subscribed, |m| m.status);
        self.sms
            .put_member(
                site,
                &job.phone,
                member,
                job.email.clone(),
                status,
                Some(eligible),
                None,
            )
            .await
            .map(|_| ())
    }
}

/// How long a claim holds: past it, a job still `sending` is parked as `unknown`.
pub const CLAIM: Duration = Duration::from_secs(15 * 60);
/// Sends in flight per site at once (the rate limit still applies).
const CONCURRENCY: usize = 32;
/// Attempts that did not reach the gateway before a job is parked.
pub const MAX_ATTEMPTS: u32 = 8;

/// What one run did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SendReport {
    pub sites: usize,
    pub due: usize,
    pub sent: usize,
    pub skipped: usize,
    pub deferred: usize,
    pub parked: usize,
    /// Claimed or changed by another run meanwhile.
    pub taken_elsewhere: usize,
    /// Left due because the run reached its deadline.
    pub left_for_next_run: usize,
}

/// Due jobs read per query.
const PAGE: usize = 1000;

#[derive(Default)]
struct Counters {
    due: AtomicUsize,
    sent: AtomicUsize,
    skipped: AtomicUsize,
    deferred: AtomicUsize,
    parked: AtomicUsize,
    taken: AtomicUsize,
    left: AtomicUsize,
}

impl Counters {
    /// Jobs ended so far: sent, skipped, deferred or parked.
    fn ended(&self) -> usize {
        [&self.sent, &self.skipped, &self.deferred, &self.parked]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

enum Ending {
    Sent(serde_json::Value),
    Skipped(&'static str),
    /// Due again at this time, with the reason.
    Deferred(OffsetDateTime, String),
    Parked(String),
}

#[derive(Debug)]
pub struct Sender<S: JobStore = DynamoJobs> {
    store: S,
    gateway: Gateway,
    /// How long a member's cached eligibility is trusted.
    eligibility_ttl: Duration,
}

/// Waits between attempts that did not reach the gateway: 30 s, 1, 2, 4 ... minutes.
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(30u64 << attempts.min(10))
}

impl Sender<DynamoJobs> {
    pub fn new(sms: Sms, gateway: Gateway) -> Self {
        let eligibility_ttl = sms.eligibility_ttl;
        Self::with_store(DynamoJobs::new(sms), gateway, eligibility_ttl)
    }
}

impl<S: JobStore> Sender<S> {
    pub fn with_store(store: S, gateway: Gateway, eligibility_ttl: Duration) -> Self {
        Self {
            store,
            gateway,
            eligibility_ttl,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Sends what is due at `now`, taking no new work after `deadline`.
    pub async fn run(
        &self,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> Result<SendReport, SmsError> {
        let sites = self.store.sites().await?;
        let counters = Counters::default();
        for site in &sites {
            if Instant::now() >= deadline {
                break;
            }
            if let Err(e) = self.run_site(site, now, deadline, &counters).await {
                // One site's failure (its KMS key, its shard) must not stop the others.
                tracing::error!(site = site.site_id, error = %e, "a site's SMS run failed");
            }
        }
        let get = |c: &AtomicUsize| c.load(Ordering::Relaxed);
        Ok(SendReport {
            sites: sites.len(),
            due: get(&counters.due),
            sent: get(&counters.sent),
            skipped: get(&counters.skipped),
            deferred: get(&counters.deferred),
            parked: get(&counters.parked),
            taken_elsewhere: get(&counters.taken),
            left_for_next_run: get(&counters.left),
        })
    }

    async fn run_site(
        &self,
        site: &SmsSite,
        now: OffsetDateTime,
        deadline: Instant,
        counters: &Counters,
    ) -> Result<(), SmsError> {
        let until = clock::sortable(now);
        let rate = site
            .activation
            .as_ref()
            .and_then(|a| NonZeroU32::new(a.rate_per_second))
            .unwrap_or(NonZeroU32::MIN);
        let limiter = Arc::new(RateLimiter::direct(Quota::per_second(rate)));
        let mut tokens = None;
        // A page at a time, so a run's memory is bounded by the page, not the backlog:
        // what a page ends leaves the due index, so the next query starts over.
        while Instant::now() < deadline {
            let due = self.store.due(site, &until, PAGE).await?;
            if due.is_empty() {
                break;
            }
            let full_page = due.len() >= PAGE;
            counters.due.fetch_add(due.len(), Ordering::Relaxed);
            if tokens.is_none()
                && let Some(a) = &site.activation
                && a.active
            {
                tokens = Some(self.store.tokens(site).await?);
            }
            // Members in one batched read (100 per request).
            let mut phones: Vec<&str> = due.iter().map(|j| j.phone.as_str()).collect();
            phones.sort_unstable();
            phones.dedup();
            let members = self.store.members(site, &phones).await?;
            let ended_before = counters.ended();
            futures::stream::iter(due)
                .for_each_concurrent(CONCURRENCY, |job| {
                    let (limiter, tokens, members) = (limiter.clone(), tokens.as_ref(), &members);
                    async move {
                        if Instant::now() >= deadline {
                            counters.left.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        let member = members.get(job.phone.as_str());
                        self.process(site, job, member, tokens, &limiter, now, counters)
                            .await;
                    }
                })
                .await;
            // A short page was the last; a page where nothing ended (all taken by
            // another run, or stale index entries) would only come back again.
            if !full_page || counters.ended() == ended_before {
                break;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn process(
        &self,
        site: &SmsSite,
        job: SmsJob,
        member: Option<&SmsMember>,
        tokens: Option<&OpenTokens>,
        limiter: &governor::DefaultDirectRateLimiter,
        now: OffsetDateTime,
        counters: &Counters,
    ) {
        let (Some(activation), Some(tokens)) = (site.activation.as_ref(), tokens) else {
            self.end(site, &job, Ending::Skipped("deactivated"), now, counters)
                .await;
            return;
        };
        if job.status == JobStatus::Sending {
            // Its claim ran out without a result: the SMS may have gone out.
            let ending = Ending::Parked(
                "unknown: the run that claimed it ended without a result; it may have been sent"
                    .into(),
            );
            self.end(site, &job, ending, now, counters).await;
            return;
        }
        if member.is_some_and(|m| m.status == MemberStatus::Unsubscribed) {
            self.end(site, &job, Ending::Skipped("unsubscribed"), now, counters)
                .await;
            return;
        }
        let zone = job
            .time_zone
            .as_deref()
            .or(member.and_then(|m| m.time_zone.as_deref()))
            .unwrap_or(&activation.time_zone);
        if let Some(opening) = activation.sending_hours.next_opening(now, zone) {
            let ending = Ending::Deferred(opening, format!("quiet_hours in {zone}"));
            self.end(site, &job, ending, now, counters).await;
            return;
        }
        // The claim: from here on, no other run touches the job.
        let mut claimed = job.next(now);
        claimed.status = JobStatus::Sending;
        claimed.attempts += 1;
        claimed.due_at = Some(clock::sortable(now + CLAIM));
        if !self.write(&claimed, Some(job.revision), None).await {
            counters.taken.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let user = GatewayUser {
            phone: job.phone.for_gateway(activation.default_country),
            email: job.email.clone(),
        };
        let fresh = member.filter(|m| {
            m.eligibility_checked_at
                .as_deref()
                .and_then(clock::parse_rfc3339)
                .is_some_and(|at| now - at < self.eligibility_ttl)
        });
        let eligible = match fresh.and_then(|m| m.eligible) {
            Some(eligible) => eligible,
            None => match self.gateway.eligibility(&tokens.app_token, &user).await {
                Ok(answer) => {
                    let eligible = text_eligible(&answer);
                    if let Err(e) = self
                        .store
                        .remember_eligibility(site, &job, member, eligible)
                        .await
                    {
                        tracing::warn!(error = %e, "the eligibility was not cached");
                    }
                    eligible
                }
                // Nothing was sent yet: every failure here may be tried again.
                Err(e) => {
                    let ending = self.not_reached(&claimed, &e, now);
                    self.end(site, &claimed, ending, now, counters).await;
                    return;
                }
            },
        };
        if !eligible {
            self.end(site, &claimed, Ending::Skipped("ineligible"), now, counters)
                .await;
            return;
        }
        limiter.until_ready().await;
        let to = job.phone.for_gateway(activation.default_country);
        let ending = match self
            .gateway
            .send_message(&tokens.messages_token, &to, &job.body)
            .await
        {
            Ok(answer) => Ending::Sent(answer),
            Err(
                e @ OutboundError::Retryable {
                    maybe_delivered: false,
                    ..
                },
            ) => self.not_reached(&claimed, &e, now),
            Err(OutboundError::Retryable { reason, .. }) => Ending::Parked(format!(
                "unknown: {reason}; the gateway may have sent it, so it is not sent again"
            )),
            // The contract's run-time error: the legacy messages token must be activated.
            Err(OutboundError::Rejected {
                status: status @ (401 | 403),
                excerpt,
            }) => Ending::Parked(format!(
                "messages_token_inactive: the gateway refused the messages token ({status} {excerpt}); \
                 ask legacyapi@attentivemobile.com to activate it, then replay"
            )),
            Err(OutboundError::Rejected { status, excerpt }) => {
                Ending::Parked(format!("gateway_rejected: {status} {excerpt}"))
            }
            Err(OutboundError::Refused(why)) => Ending::Parked(format!("refused: {why}")),
        };
        self.end(site, &claimed, ending, now, counters).await;
    }

    /// A call that did not reach the gateway: due again after the backoff (or the
    /// gateway's `Retry-After`), parked after [`MAX_ATTEMPTS`]; a refusal is parked.
    fn not_reached(&self, job: &SmsJob, error: &OutboundError, now: OffsetDateTime) -> Ending {
        match error {
            OutboundError::Retryable {
                retry_after,
                reason,
                ..
            } => {
                if job.attempts >= MAX_ATTEMPTS {
                    return Ending::Parked(format!(
                        "gateway_unavailable: {reason} after {} attempts",
                        job.attempts
                    ));
                }
                let wait = retry_after.unwrap_or_default().max(backoff(job.attempts));
                Ending::Deferred(now + wait, format!("gateway: {reason}"))
            }
            OutboundError::Rejected { status, excerpt } => {
                Ending::Parked(format!("gateway_rejected: {status} {excerpt}"))
            }
            OutboundError::Refused(why) => Ending::Parked(format!("refused: {why}")),
        }
    }

    /// Writes how a job ended (under its revision), with `sms.sent` when it was sent.
    async fn end(
        &self,
        site: &SmsSite,
        job: &SmsJob,
        ending: Ending,
        now: OffsetDateTime,
        counters: &Counters,
    ) {
        let mut next = job.next(now);
        let mut event = None;
        let counter = match ending {
            Ending::Sent(answer) => {
                next.status = JobStatus::Sent;
                next.due_at = None;
                next.reason = None;
                next.sent_at = Some(clock::sortable(now));
                next.gateway_answer = Some(answer);
                event = Some(
                    HubEvent::new(EventPayload::SmsSent(SmsSent {
                        site_id: job.site_id,
                        action_id: job.action_id.clone(),
                        action: job.action.clone(),
                        member_id: job.member_id.clone(),
                        segments: segments(&job.body),
                        billed_shop: site.billed_shop,
                    }))
                    .for_account(job.account_id, job.partner_id),
                );
                &counters.sent
            }
            Ending::Skipped(reason) => {
                next.status = JobStatus::Skipped;
                next.due_at = None;
                next.reason = Some(reason.to_owned());
                &counters.skipped
            }
            Ending::Deferred(at, reason) => {
                next.status = JobStatus::Pending;
                next.due_at = Some(clock::sortable(at));
                next.reason = Some(reason);
                &counters.deferred
            }
            Ending::Parked(reason) => {
                tracing::error!(site = job.site_id, action_id = %job.action_id, %reason, "an SMS job was parked");
                next.status = JobStatus::Parked;
                next.due_at = None;
                next.reason = Some(reason);
                &counters.parked
            }
        };
        if self.write(&next, Some(job.revision), event).await {
            counter.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.taken.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One conditional write (with its event); `false` when another run changed the job.
    async fn write(&self, job: &SmsJob, expected: Option<u64>, event: Option<HubEvent>) -> bool {
        match self.store.write(job, expected, event).await {
            Ok(written) => written,
            Err(e) => {
                tracing::warn!(action_id = %job.action_id, error = %e, "an SMS job was not written");
                false
            }
        }
    }
}
