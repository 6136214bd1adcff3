//! `hub-bench sms [--jobs N] [--request-jobs M]`: the SMS send pipeline's figures.
//!
//! 1. **Throughput**: N due jobs (20,000 by default) through the real pipeline
//!    (`shared::sms::send::Sender`: claim, rate limit, gateway call over HTTP, result)
//!    against the stand-in's fake gateway with no rate limit, the store behind the
//!    pipeline's port answered in process (the emulator deep-copies the table on every
//!    transaction, so it cannot carry this). Goal: at least 2,000 messages/s on a
//!    2-core machine; peak memory reported.
//! 2. **AWS requests per message**: M jobs (500) through the same pipeline on DynamoDB,
//!    EventBridge and KMS in the emulator (a stand-in of its own), counted where the
//!    emulator serves them. Goal: at most 2.2 (claim + result; reads and events batched).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::Value;
use shared::{
    clock,
    domain::{AccountId, CountryCode, PartnerId, PhoneE164},
    events::HubEvent,
    outbound::{OutboundClient, OutboundConfig},
    sms::{
        Activation, JobStatus, MemberStatus, OpenTokens, SmsError, SmsJob, SmsMember, SmsSite,
        gateway::Gateway,
        quiet::SendingHours,
        send::{JobStore, Sender},
    },
};

type Error = Box<dyn std::error::Error>;

const THROUGHPUT_GOAL: f64 = 2000.0;
const REQUESTS_GOAL: f64 = 2.2;

/// The in-process store: jobs by action id, conditional writes on the revision.
struct MemoryJobs {
    site: SmsSite,
    jobs: Mutex<HashMap<String, SmsJob>>,
    members: HashMap<String, SmsMember>,
    events: AtomicUsize,
}

impl JobStore for MemoryJobs {
    async fn sites(&self) -> Result<Vec<SmsSite>, SmsError> {
        Ok(vec![self.site.clone()])
    }

    async fn due(
        &self,
        _site: &SmsSite,
        until: &str,
        limit: usize,
    ) -> Result<Vec<SmsJob>, SmsError> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        Ok(jobs
            .values()
            .filter(|j| matches!(j.status, JobStatus::Pending | JobStatus::Sending))
            .filter(|j| j.due_at.as_deref().is_some_and(|at| at <= until))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn members(
        &self,
        _site: &SmsSite,
        phones: &[&str],
    ) -> Result<HashMap<String, SmsMember>, SmsError> {
        Ok(phones
            .iter()
            .filter_map(|p| self.members.get(*p).map(|m| ((*p).to_owned(), m.clone())))
            .collect())
    }

    async fn tokens(&self, _site: &SmsSite) -> Result<OpenTokens, SmsError> {
        Ok(OpenTokens {
            app_token: "bench-app-token".into(),
            messages_token: "bench-messages-token".into(),
        })
    }

    async fn write(
        &self,
        job: &SmsJob,
        expected: Option<u64>,
        event: Option<HubEvent>,
    ) -> Result<bool, SmsError> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let current = jobs.get(&job.action_id).map(|j| j.revision);
        if current != expected {
            return Ok(false);
        }
        jobs.insert(job.action_id.clone(), job.clone());
        if event.is_some() {
            self.events.fetch_add(1, Ordering::Relaxed);
        }
        Ok(true)
    }

    async fn remember_eligibility(
        &self,
        _site: &SmsSite,
        _job: &SmsJob,
        _member: Option<&SmsMember>,
        _eligible: bool,
    ) -> Result<(), SmsError> {
        Ok(())
    }
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn site(site_id: u64, rate: u32) -> Result<SmsSite, Error> {
    let now = clock::sortable(clock::now());
    Ok(SmsSite {
        site_id,
        account_id: AccountId::for_sms_site(site_id),
        partner_id: PartnerId::random(),
        name: "Bench site".into(),
        loyalty_token_hash: String::new(),
        webhook_secret_sealed: None,
        activation: Some(Activation {
            active: true,
            sign_up_source_id: "132109".into(),
            app_token_sealed: String::new(),
            messages_token_sealed: String::new(),
            default_country: CountryCode::parse("US")?,
            time_zone: "UTC".into(),
            // Open all day: the bench measures sending, not waiting.
            sending_hours: SendingHours {
                start: 0,
                end: 1439,
            },
            rate_per_second: rate,
            updated_at: now.clone(),
        }),
        templates: Default::default(),
        billed_shop: None,
        created_at: now.clone(),
        updated_at: now,
        revision: 1,
    })
}

fn phone(n: usize) -> Result<PhoneE164, Error> {
    Ok(PhoneE164::parse(
        &format!("770765{:04}", n % 10_000),
        CountryCode::parse("US")?,
    )?)
}

async fn throughput(jobs: usize) -> Result<bool, Error> {
    // The stand-in's recorder, serving the fake gateway (no rate limit, nothing scripted).
    let recorder = hub_local::recorder::Recorder::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, recorder.router()).await;
    });
    let client = OutboundClient::new(OutboundConfig {
        recorder: Some(url::Url::parse(&format!("http://{address}"))?),
        ..OutboundConfig::default()
    })?;
    let gateway = Gateway::new(client, shared::Config::DEFAULT_SMS_GATEWAY_URL);
    let site = site(100_001, 1_000_000)?;
    let now = clock::now();
    let at = clock::sortable(now);
    let mut members = HashMap::new();
    let mut stored = HashMap::with_capacity(jobs);
    for n in 0..jobs {
        let phone = phone(n)?;
        members
            .entry(phone.as_str().to_owned())
            .or_insert(SmsMember {
                account_id: site.account_id,
                site_id: site.site_id,
                phone: phone.clone(),
                email: None,
                status: MemberStatus::Subscribed,
                time_zone: None,
                eligible: Some(true),
                eligibility_checked_at: Some(at.clone()),
                updated_at: at.clone(),
            });
        let action_id = format!("bench-{n}");
        stored.insert(
            action_id.clone(),
            SmsJob {
                account_id: site.account_id,
                partner_id: site.partner_id,
                site_id: site.site_id,
                action_id,
                action: "points_earned".into(),
                member_id: None,
                phone,
                email: None,
                time_zone: None,
                body: format!("You earned {} points.", n % 500),
                status: JobStatus::Pending,
                reason: None,
                attempts: 0,
                due_at: Some(at.clone()),
                sent_at: None,
                gateway_answer: None,
                created_at: at.clone(),
                updated_at: at.clone(),
                revision: 1,
            },
        );
    }
    let store = MemoryJobs {
        site,
        jobs: Mutex::new(stored),
        members,
        events: AtomicUsize::new(0),
    };
    let sender = Sender::with_store(store, gateway, Duration::from_secs(3600));
    let started = Instant::now();
    let report = sender
        .run(now, Instant::now() + Duration::from_secs(600))
        .await?;
    let elapsed = started.elapsed().as_secs_f64();
    let rate = report.sent as f64 / elapsed;
    let peak = peak_rss_mb().unwrap_or(f64::NAN);
    let events = sender.store().events.load(Ordering::Relaxed);
    let pass = report.sent == jobs && events == jobs && rate >= THROUGHPUT_GOAL;
    println!(
        "throughput: {} jobs, {} sent ({} sms.sent) in {elapsed:.2} s = {rate:.0} messages/s (goal >= {THROUGHPUT_GOAL}); peak RSS {peak:.1} MB  {}",
        jobs,
        report.sent,
        events,
        if pass { "PASS" } else { "FAIL" }
    );
    Ok(pass)
}

async fn requests_per_message(jobs: usize) -> Result<bool, Error> {
    let emulator = hub_local::start_emulator(true).await?;
    let options = hub_local::Options::for_tests(&format!(
        "bench-sms-{}",
        shared::secrets::random_hex16().get(..6).unwrap_or("x")
    ));
    let stand_in = hub_local::start(options, emulator).await?;
    let hub = &stand_in.hub;
    let partner = hub
        .partners
        .register("Bench", &stand_in.demo.public_key_pem, None)
        .await?;
    let registered = hub.sms.register_site(partner.partner_id, "Bench").await?;
    hub.sms
        .activate(
            registered.site_id,
            shared::sms::ActivationRequest {
                sign_up_source_id: "132109".into(),
                app_token: "bench-app-token".into(),
                messages_token: "bench-messages-token".into(),
                default_country: CountryCode::parse("US")?,
                time_zone: "UTC".into(),
                sending_hours: SendingHours {
                    start: 0,
                    end: 1439,
                },
                rate_per_second: 1000,
            },
        )
        .await?;
    let site = hub
        .sms
        .set_template(
            registered.site_id,
            "points_earned",
            Some("+{{points}} points"),
        )
        .await?;
    let members = 50;
    for n in 0..members {
        hub.sms
            .set_member(
                &site,
                &phone(n)?,
                None,
                MemberStatus::Subscribed,
                Some(true),
                None,
            )
            .await?;
    }
    for n in 0..jobs {
        let body = serde_json::json!({"actionId": format!("bench-{n}"), "action": "points_earned",
            "phone": phone(n % members)?.as_str(), "points": n});
        let action = shared::sms::LoyaltyAction::parse(&body, CountryCode::parse("US")?)?;
        hub.sms.accept_action(&site, &action).await?;
    }
    // The sender's own hub, as the send function has (cold caches), with a long AWS
    // timeout: the emulator serves one request at a time, and the stand-in's relay and
    // event consumers (a timeline entry per sms.sent) queue beside the run's calls.
    let mut config = stand_in.hub.config.clone();
    config.aws_timeout = Duration::from_secs(300);
    let hub = shared::Hub::new(config, &stand_in.sdk);
    let client = OutboundClient::new(OutboundConfig::from_config(&hub.config)?)?;
    let sender = Sender::new(
        hub.sms.clone(),
        Gateway::new(client, &hub.config.sms_gateway_url),
    );
    // Counted by the SDK interceptor in the run's own task (`shared::round_trips`): the
    // stand-in's pollers and the outbox relay, which publish off this path, are not.
    let (report, measured) = shared::round_trips::measure(
        sender.run(clock::now(), Instant::now() + Duration::from_secs(600)),
    )
    .await;
    let report = report?;
    let total = measured.calls.len();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for call in &measured.calls {
        *counts.entry(call.as_str()).or_default() += 1;
    }
    let by_operation: Vec<String> = counts.iter().map(|(op, n)| format!("{op}={n}")).collect();
    let per_message = total as f64 / report.sent.max(1) as f64;
    let pass = report.sent == jobs && per_message <= REQUESTS_GOAL;
    println!(
        "AWS requests: {total} for {} sent of {jobs} = {per_message:.2} per message (goal <= {REQUESTS_GOAL})  {}",
        report.sent,
        if pass { "PASS" } else { "FAIL" }
    );
    println!("  by operation: {}", by_operation.join(", "));
    let value: Value = serde_json::to_value(&report)?;
    println!("  run: {value}");
    Ok(pass)
}

pub async fn run(args: &[String]) -> Result<bool, Error> {
    // The pipeline's warnings (a job not written, a site failing) explain a FAIL.
    shared::telemetry::init();
    let mut jobs = 20_000;
    let mut request_jobs = 500;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || -> Result<usize, Error> {
            Ok(args.next().ok_or(format!("{arg} needs a value"))?.parse()?)
        };
        match arg.as_str() {
            "--jobs" => jobs = value()?,
            "--request-jobs" => request_jobs = value()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let fast = throughput(jobs).await?;
    let lean = requests_per_message(request_jobs).await?;
    Ok(fast && lean)
}
