//! `hub-admin`: the operator's path into the hub. It talks to the table and the bus
//! named by `TABLE_NAME`, `EVENT_BUS_NAME` and `KMS_KEY_ID` with the usual AWS
//! credentials; against the local stand-in, load `.hub/local.env` first:
//!
//! ```sh
//! set -a; . .hub/local.env; set +a
//! cargo run -p hub-admin -- register-partner --name "Acme" --public-key jwtRS256.key.pub
//! ```

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Parser, Subcommand};
use serde_json::json;
use shared::{
    Hub,
    domain::{AccountId, PartnerId},
};

#[derive(Parser)]
#[command(
    version,
    about = "Operate Partner Hub: partners, keys, timelines, dead letters"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Registers a partner with its RSA public key (PEM); prints its partner token once.
    RegisterPartner {
        #[arg(long)]
        name: String,
        /// The partner's public key file (`openssl rsa -pubout` output).
        #[arg(long)]
        public_key: PathBuf,
    },
    /// Registers a marketplace (the `/etvas-events` caller); prints its key once. It
    /// sends the key as `Authorization: Bearer <key>`; rotate by registering anew.
    RegisterMarketplace {
        #[arg(long)]
        name: String,
    },
    /// Adds a public key for rotation; the partner names it with the JWT header `kid`.
    AddKey {
        #[arg(long)]
        partner: String,
        #[arg(long)]
        public_key: PathBuf,
    },
    /// Retires a public key.
    RemoveKey {
        #[arg(long)]
        partner: String,
        #[arg(long)]
        kid: String,
    },
    /// The plan catalog partners list (`POST /api/v0/partners/subscriptions`).
    Plans {
        #[command(subcommand)]
        action: PlansAction,
    },
    /// Unbinds the partner's EventBridge side: its source is released, and its
    /// statement leaves the ingress bus's policy (its accounts may no longer put events).
    RemoveEvents {
        #[arg(long)]
        partner: String,
    },
    /// Registers a loyalty site (SMS contract) as an account of the partner; prints the
    /// site id, the loyalty token (once) and the access token (base64 of
    /// `[loyaltyToken, siteId]`, sent as `Authorization: Bearer`).
    RegisterSite {
        #[arg(long)]
        partner: String,
        #[arg(long)]
        name: String,
    },
    /// Activates a site's SMS gateway (as `PUT /api/3.0/sms/activation` does); the tokens
    /// are sealed with KMS and never shown again.
    ActivateSite {
        #[arg(long)]
        site: u64,
        /// The gateway's sign-up flow id (its Subscribers tab).
        #[arg(long)]
        sign_up_source_id: String,
        /// The gateway app's bearer token (subscriptions API).
        #[arg(long, env = "SMS_APP_TOKEN")]
        app_token: String,
        /// The legacy messages token.
        #[arg(long, env = "SMS_MESSAGES_TOKEN")]
        messages_token: String,
        #[arg(long, default_value = "US")]
        default_country: String,
        #[arg(long, default_value = "UTC")]
        time_zone: String,
        /// The hours SMS may go out (member's local time), as the API's `quietHours`.
        #[arg(long, default_value = "08:00")]
        quiet_hours_start: String,
        #[arg(long, default_value = "21:00")]
        quiet_hours_end: String,
        #[arg(long, default_value_t = 10)]
        rate_per_second: u32,
    },
    /// Stops every SMS of a site at once (as `DELETE /api/3.0/sms/activation` does).
    DeactivateSite {
        #[arg(long)]
        site: u64,
    },
    /// Counts a site's SMS (segments) in a shop's usage as `textMessages`; without
    /// `--shop`, no longer.
    BillSite {
        #[arg(long)]
        site: u64,
        #[arg(long)]
        shop: Option<String>,
    },
    /// SMS jobs parked for an operator (unknown outcome, gateway refusal or down), oldest
    /// first, with the reason.
    SmsParked,
    /// Registers the partner's webhook base URL (usage records go to
    /// `<url>/releva/webhooks/usageRecords`) with a new Standard Webhooks signing secret,
    /// printed once; registering again replaces both.
    SetWebhook {
        #[arg(long)]
        partner: String,
        #[arg(long)]
        url: String,
    },
    /// The partner's webhook endpoint: its URL, since when it has been failing, whether it
    /// is disabled (after 5 days of failures).
    WebhookStatus {
        #[arg(long)]
        partner: String,
    },
    /// Enables the partner's webhook endpoint again; `--replay-since 2026-11-01` also sends
    /// again every shop's usage records from that day on, under their first message ids.
    EnableWebhook {
        #[arg(long)]
        partner: String,
        #[arg(long)]
        replay_since: Option<String>,
    },
    /// Issues the partner's embed API token (a non-expiring ES256 JWT, sent as
    /// `Authorization: JWT <token>`); prints it. Needs EMBED_SIGNING_KEY_IDS.
    EmbedToken {
        #[arg(long)]
        partner: String,
    },
    /// Revokes every embed API token of the partner issued so far (issue a new one after).
    RevokeEmbedTokens {
        #[arg(long)]
        partner: String,
    },
    /// Registers a browser origin (`https://acme.com`) whose pages call the embed API
    /// with the partner's tokens (CORS); `--remove` takes it away.
    EmbedOrigin {
        #[arg(long)]
        partner: String,
        #[arg(long)]
        origin: String,
        #[arg(long)]
        remove: bool,
    },
    /// Sets the deployment's OAuth2 client of a connector (`GET /api/servertypes` lists
    /// them); the secret is sealed with KMS.
    SetOauthClient {
        #[arg(long)]
        servertype: u64,
        #[arg(long)]
        client_id: String,
        #[arg(long, env = "OAUTH_CLIENT_SECRET")]
        client_secret: String,
    },
    /// Issues the partner's analytics key (sent as `x-rlv-analytics-key` to read
    /// analytics); prints it once. Issuing again replaces the old key at once.
    IssueAnalyticsKey {
        #[arg(long)]
        partner: String,
    },
    /// Registers the partner's EventBridge side: the `source` its events carry and the ARN
    /// of its bus, where the hub sends Ready for Installation.
    SetEvents {
        #[arg(long)]
        partner: String,
        #[arg(long)]
        source: String,
        #[arg(long)]
        bus_arn: String,
        /// An AWS account the partner sends events from (repeat for several); by default
        /// the account that owns `--bus-arn`. Events with its source from any other
        /// account are refused, and the ingress bus admits only these.
        #[arg(long)]
        account: Vec<String>,
    },
    /// Marks a customer's account as having passed QA: it goes live and Ready for
    /// Installation is sent to the partner.
    Approve {
        #[arg(long)]
        partner: String,
        /// The partner's customer id (the `id` of its Create Subscription event).
        #[arg(long)]
        customer: String,
    },
    /// Puts an event envelope (e.g. a sample from events/subscriptions/) on the ingress
    /// bus, as a partner's rule would: its `source`, `detail-type` and `detail` are sent.
    PutEvent {
        #[arg(long)]
        file: PathBuf,
        /// Overrides the envelope's source (e.g. your partner's registered source).
        #[arg(long)]
        source: Option<String>,
        /// Waits up to this many seconds for what became of the event: processed (its
        /// outcome) or parked (its reason, and a failing exit).
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
    },
    /// Makes an RSA key pair as a partner would for the signed-payload contract:
    /// `<out>` (private, PKCS#1 PEM) and `<out>.pub` (public, SPKI PEM). Needs no AWS
    /// settings.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Prints an account's timeline.
    Timeline {
        #[arg(long)]
        account: String,
    },
    /// Lists the events parked as dead letters.
    DeadLetters,
    /// Lists outbound deliveries (webhooks) that failed for good.
    Deliveries,
    /// Lists the dead-letter queue (`DEAD_LETTER_QUEUE_URL`, the stack's
    /// `DeadLetterQueueUrl` output): invocations that failed their retries and events
    /// that could not be delivered, each with its function, error and original event.
    FailedInvocations,
    /// Invokes a failed invocation's function again (asynchronously, with the original
    /// event; never via the bus) and removes it from the queue.
    Reinvoke {
        /// The message id (see `failed-invocations`).
        id: String,
    },
    /// Signs a payload the way the contract's Node.js example does (RS512, `iat`, `exp`);
    /// prints the JWT. Needs no AWS settings.
    Sign {
        /// The claims to sign (a JSON file, e.g. events/partner-api/provision-domain.claims.json).
        #[arg(long)]
        claims: PathBuf,
        /// The partner's private key (PEM). Defaults to the local demo partner's key.
        #[arg(long)]
        private_key: Option<PathBuf>,
        /// Lifetime in seconds (the hub accepts at most 3600 by default).
        #[arg(long, default_value_t = 3600)]
        expires_in: i64,
        /// Key id to put in the JWT header (after a rotation).
        #[arg(long)]
        kid: Option<String>,
    },
    /// Puts the events of the changes committed in a window on the hub's bus again, from
    /// their outbox items (kept three days): after the outbox relay failed past its
    /// retries (a stream batch in `failed-invocations`). Consumers ignore events they
    /// already have, so an overlapping window is harmless.
    RepublishEvents {
        /// Start of the window (RFC 3339, e.g. 2026-12-02T06:00:00Z).
        #[arg(long)]
        from: String,
        /// End of the window (RFC 3339); now by default.
        #[arg(long)]
        to: Option<String>,
    },
    /// Puts a dead letter back on the hub's bus (after the cause was fixed) and removes it.
    Replay {
        /// The dead letter's id (see `dead-letters`).
        id: String,
    },
}

#[derive(Subcommand)]
enum PlansAction {
    /// Publishes plans from a JSON file in the contract's shape (see
    /// events/partner-api/plans.json): a changed plan gets a new version, selections
    /// already confirmed keep theirs.
    Put {
        #[arg(long)]
        file: PathBuf,
    },
    /// The current catalog.
    List,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Keygen { out } = &cli.command {
        return match keygen(out) {
            Ok(public) => {
                println!("{}", json!({"privateKey": out, "publicKey": public}));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hub-admin: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::Sign {
        claims,
        private_key,
        expires_in,
        kid,
    } = &cli.command
    {
        let now = signing_time().await;
        return match sign(
            claims,
            private_key.as_deref(),
            *expires_in,
            kid.clone(),
            now,
        ) {
            Ok(jwt) => {
                println!("{jwt}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hub-admin: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let hub = match Hub::from_env().await {
        Ok(hub) => hub,
        Err(e) => {
            eprintln!("hub-admin: {e}");
            return ExitCode::from(2);
        }
    };
    // Against a stand-in, the hub's time is its clock's (which may have been moved on):
    // `republish-events`' window, tokens' `iat`, `updatedAt`s are then the hub's.
    let clock = shared::clock::Clock::new();
    if std::env::var_os("HUB_LOCAL_URL").is_some() {
        clock.move_at_least_to(signing_time().await);
    }
    match clock.scope(run(&hub, cli.command)).await {
        Ok(output) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&output).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hub-admin: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// What became of a partner's event: its outcome once processed (the ledger has it), or
/// an error with the reason once parked.
async fn await_outcome(
    hub: &Hub,
    source: &str,
    id: &str,
    seconds: u64,
) -> Result<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let scope = hub
        .partners
        .route_for_source(source)
        .await?
        .map(|route| shared::subscriptions::Subscriptions::ledger_scope(route.partner_id));
    loop {
        if let Some(scope) = &scope {
            let entry: Option<shared::store::LedgerEntry> = hub
                .table
                .get(&shared::store::keys::ledger(scope, id))
                .await?;
            if let Some(entry) = entry {
                let outcome: serde_json::Value = serde_json::from_str(&entry.outcome)?;
                return Ok(json!({"outcome": outcome, "accountId": entry.account_id}));
            }
        }
        let parked = hub.dead_letters.list().await?;
        if let Some(letter) = parked.iter().find(|l| l.payload.contains(id)) {
            return Err(format!(
                "the event was parked as dead letter {}: {}",
                letter.id, letter.reason
            )
            .into());
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "no outcome for event {id} after {seconds} s (is the hub running?)"
            )
            .into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

fn keygen(out: &Path) -> Result<PathBuf> {
    let (private, public) = shared::secrets::generate_rsa_key_pair(2048)?;
    let public_path = PathBuf::from(format!("{}.pub", out.display()));
    std::fs::write(out, private)?;
    std::fs::write(&public_path, public)?;
    Ok(public_path)
}

async fn failed_invocations() -> Result<hub_admin::failed::FailedInvocations> {
    let queue = std::env::var("DEAD_LETTER_QUEUE_URL").map_err(|_| {
        "DEAD_LETTER_QUEUE_URL is not set (the stack's DeadLetterQueueUrl output; locally in .hub/local.env)"
    })?;
    let sdk = shared::aws::load_sdk_config().await;
    Ok(hub_admin::failed::FailedInvocations::new(&sdk, queue))
}

/// The hub's "now" for `hub-admin`: the local stand-in's clock when one runs (it may have been
/// moved forward: `POST /_local/clock`), found by `HUB_LOCAL_URL` (in `.hub/local.env`)
/// or the demo partner's `base_url`; else this machine's.
async fn signing_time() -> time::OffsetDateTime {
    let base = std::env::var("HUB_LOCAL_URL").ok().or_else(|| {
        let demo = std::fs::read_to_string(".hub/demo-partner.json").ok()?;
        let demo: serde_json::Value = serde_json::from_str(&demo).ok()?;
        demo["base_url"].as_str().map(str::to_owned)
    });
    let Some(base) = base else {
        return shared::clock::now();
    };
    let url = format!("{}/_local/clock", base.trim_end_matches('/'));
    // reqwest wants a process-wide TLS provider even for a plain-HTTP call.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = async {
        let answer: serde_json::Value = reqwest::Client::new()
            .get(&url)
            .timeout(std::time::Duration::from_secs(2))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        shared::clock::parse_rfc3339(answer["now"].as_str()?)
    };
    match read.await {
        Some(now) => now,
        None => {
            eprintln!("hub-admin: no stand-in clock at {url}; signing at this machine's time");
            shared::clock::now()
        }
    }
}

fn sign(
    claims: &Path,
    private_key: Option<&Path>,
    expires_in: i64,
    kid: Option<String>,
    now: time::OffsetDateTime,
) -> Result<String> {
    let mut claims: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(claims)?)?;
    let pem = match private_key {
        Some(path) => std::fs::read_to_string(path)?,
        None => {
            let demo = std::fs::read_to_string(".hub/demo-partner.json")
                .map_err(|e| format!(".hub/demo-partner.json ({e}); run `cargo run -p hub-local` first or pass --private-key"))?;
            let demo: serde_json::Value = serde_json::from_str(&demo)?;
            demo["private_key_pem"]
                .as_str()
                .ok_or("the demo file has no private_key_pem")?
                .to_owned()
        }
    };
    let now = now.unix_timestamp();
    claims["iat"] = now.into();
    claims["exp"] = (now + expires_in).into();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS512);
    header.kid = kid;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())?;
    Ok(jsonwebtoken::encode(&header, &claims, &key)?)
}

async fn run(hub: &Hub, command: Command) -> Result<serde_json::Value> {
    Ok(match command {
        Command::RegisterPartner { name, public_key } => {
            let pem = std::fs::read_to_string(&public_key)?;
            let reg = hub.partners.register(&name, &pem, None).await?;
            json!({"partnerId": reg.partner_id, "partnerToken": reg.partner_token, "kid": reg.kid,
                   "note": "the token is shown only now; the hub keeps its hash"})
        }
        Command::RegisterMarketplace { name } => {
            let reg = hub.partners.register_marketplace(&name, None).await?;
            json!({"marketplaceId": reg.partner_id, "token": reg.partner_token,
                   "callbackPath": "/etvas-events",
                   "note": "send as Authorization: Bearer <token>; shown only now, the hub keeps its hash"})
        }
        Command::AddKey {
            partner,
            public_key,
        } => {
            let pem = std::fs::read_to_string(&public_key)?;
            let kid = hub
                .partners
                .add_key(PartnerId::parse(&partner)?, &pem)
                .await?;
            json!({"partnerId": partner, "kid": kid})
        }
        Command::RemoveKey { partner, kid } => {
            hub.partners
                .remove_key(PartnerId::parse(&partner)?, &kid)
                .await?;
            json!({"partnerId": partner, "removed": kid})
        }
        Command::Plans {
            action: PlansAction::Put { file },
        } => {
            let specs = shared::plans::parse_catalog(&std::fs::read_to_string(&file)?)?;
            serde_json::to_value(hub.plans.put(&specs).await?)?
        }
        Command::Plans {
            action: PlansAction::List,
        } => serde_json::to_value(hub.plans.list().await?)?,
        Command::RemoveEvents { partner } => {
            let removed = hub
                .remove_partner_events(PartnerId::parse(&partner)?)
                .await?;
            json!({"partnerId": partner, "removedSource": removed})
        }
        Command::RegisterSite { partner, name } => serde_json::to_value(
            hub.sms
                .register_site(PartnerId::parse(&partner)?, &name)
                .await?,
        )?,
        Command::ActivateSite {
            site,
            sign_up_source_id,
            app_token,
            messages_token,
            default_country,
            time_zone,
            quiet_hours_start,
            quiet_hours_end,
            rate_per_second,
        } => {
            if !(1..=1000).contains(&rate_per_second) {
                return Err("--rate-per-second must be from 1 to 1000".into());
            }
            let request = shared::sms::ActivationRequest {
                sign_up_source_id,
                app_token,
                messages_token,
                default_country: shared::domain::CountryCode::parse(&default_country)?,
                time_zone: shared::sms::quiet::parse_time_zone(&time_zone)?,
                sending_hours: shared::sms::quiet::SendingHours::parse(
                    &quiet_hours_start,
                    &quiet_hours_end,
                )?,
                rate_per_second,
            };
            let site = hub.sms.activate(site, request).await?;
            serde_json::to_value(shared::sms::ActivationView::of(&site))?
        }
        Command::DeactivateSite { site } => {
            let site = hub.sms.deactivate(site).await?;
            serde_json::to_value(shared::sms::ActivationView::of(&site))?
        }
        Command::BillSite { site, shop } => {
            let shop = shop
                .map(|s| shared::domain::ShopDomain::parse(&s))
                .transpose()?;
            let site = hub.sms.bill_to_shop(site, shop.as_ref()).await?;
            json!({"siteId": site.site_id, "billedShop": site.billed_shop})
        }
        Command::SmsParked => serde_json::to_value(hub.sms.parked().await?)?,
        Command::SetWebhook { partner, url } => {
            let secret = shared::partner_webhooks::set_endpoint(
                &hub.table,
                hub.accounts.sealer(),
                PartnerId::parse(&partner)?,
                &url,
            )
            .await?;
            json!({"partnerId": partner, "url": url, "signingSecret": secret})
        }
        Command::WebhookStatus { partner } => {
            let id = PartnerId::parse(&partner)?;
            let record = hub
                .partners
                .get(id)
                .await?
                .ok_or_else(|| format!("no partner {partner}"))?;
            match record.webhook {
                None => json!({"partnerId": partner, "webhook": null}),
                Some(w) => json!({"partnerId": partner, "url": w.base_url,
                    "failingSince": w.failing_since, "lastFailure": w.last_failure,
                    "disabledAt": w.disabled_at, "enabled": w.disabled_at.is_none()}),
            }
        }
        Command::EnableWebhook {
            partner,
            replay_since,
        } => {
            let since = replay_since
                .map(|d| {
                    shared::usage::parse_day(&d)
                        .ok_or_else(|| format!("--replay-since {d}: expected a date YYYY-MM-DD"))
                })
                .transpose()?;
            let enabled = shared::partner_webhooks::enable(
                &hub.uow,
                &hub.accounts,
                PartnerId::parse(&partner)?,
                since,
            )
            .await?;
            json!({"partnerId": partner, "enabled": true, "replayedDays": enabled.replayed})
        }
        Command::EmbedToken { partner } => {
            let token = hub
                .embed
                .issue_partner_token(PartnerId::parse(&partner)?)
                .await?;
            json!({"partnerId": partner, "token": token.token})
        }
        Command::RevokeEmbedTokens { partner } => {
            let version = hub
                .embed
                .revoke_partner_tokens(PartnerId::parse(&partner)?)
                .await?;
            json!({"partnerId": partner, "revoked": true, "tokenVersion": version})
        }
        Command::EmbedOrigin {
            partner,
            origin,
            remove,
        } => {
            let partner_id = PartnerId::parse(&partner)?;
            if remove {
                hub.embed.remove_origin(partner_id, &origin).await?;
                json!({"partnerId": partner, "origin": origin, "removed": true})
            } else {
                let origin = hub.embed.add_origin(partner_id, &origin).await?;
                json!({"partnerId": partner, "origin": origin})
            }
        }
        Command::SetOauthClient {
            servertype,
            client_id,
            client_secret,
        } => {
            let server = shared::embed::catalog::find(servertype)
                .filter(|s| s.oauth2.is_some())
                .ok_or("--servertype must be an OAuth2 connector of GET /api/servertypes")?;
            shared::embed::oauth::set_client(
                &hub.table,
                hub.embed.sealer(),
                servertype,
                &client_id,
                &client_secret,
            )
            .await?;
            json!({"servertype": servertype, "name": server.name, "clientId": client_id})
        }
        Command::IssueAnalyticsKey { partner } => {
            let key = hub
                .partners
                .issue_analytics_key(PartnerId::parse(&partner)?, None)
                .await?;
            json!({"partnerId": partner, "analyticsKey": key})
        }
        Command::SetEvents {
            partner,
            source,
            bus_arn,
            account,
        } => {
            // By default the partner sends from the account that owns its bus.
            let accounts = if account.is_empty() {
                vec![
                    shared::domain::AwsAccountId::of_arn(&bus_arn)
                        .ok_or("name the partner's AWS account with --account")?,
                ]
            } else {
                account
                    .iter()
                    .map(|a| shared::domain::AwsAccountId::parse(a))
                    .collect::<std::result::Result<Vec<_>, _>>()?
            };
            let route = hub
                .set_partner_events(PartnerId::parse(&partner)?, &source, &bus_arn, &accounts)
                .await?;
            json!({"partnerId": route.partner_id, "source": route.source, "busArn": route.bus_arn,
                   "accounts": route.accounts, "ingressBus": hub.config.ingress_bus_name})
        }
        Command::Approve { partner, customer } => {
            let customer = shared::domain::ExternalId::parse(&customer)?;
            let account = AccountId::for_external(PartnerId::parse(&partner)?, &customer);
            let approved = hub.subscriptions.approve(account).await?;
            json!({"accountId": account, "approved": approved, "alreadyApproved": !approved})
        }
        Command::Keygen { .. } => unreachable!("handled before the hub is built"),
        Command::PutEvent { file, source, wait } => {
            let event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file)?)?;
            let field = |name: &str| event.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            let source = source
                .or_else(|| field("source"))
                .ok_or("the envelope has no source")?;
            let detail_type = field("detail-type").ok_or("the envelope has no detail-type")?;
            let detail = event
                .get("detail")
                .ok_or("the envelope has no detail")?
                .to_string();
            // As a partner would: on the ingress bus (a `partner-hub` source goes nowhere
            // there, like a forged hub event on AWS).
            let ingress = hub
                .config
                .ingress_bus_name
                .clone()
                .ok_or("INGRESS_BUS_NAME is not set")?;
            let id = shared::events::EventPublisher::new(hub.outbox.publisher.client(), &ingress)
                .put_one(&source, &detail_type, &detail)
                .await?;
            let put = json!({"put": detail_type, "id": id, "source": source, "bus": ingress});
            match wait {
                None => put,
                Some(seconds) => {
                    let outcome = await_outcome(hub, &source, &id, seconds).await?;
                    json!({"put": detail_type, "id": id, "source": source, "processed": outcome})
                }
            }
        }
        Command::Timeline { account } => {
            let entries = hub.timeline.list(AccountId::parse(&account)?).await?;
            serde_json::to_value(entries)?
        }
        Command::DeadLetters => serde_json::to_value(hub.dead_letters.list().await?)?,
        Command::Deliveries => {
            serde_json::to_value(shared::outbound::delivery::failed_deliveries(&hub.table).await?)?
        }
        Command::FailedInvocations => serde_json::to_value(
            failed_invocations()
                .await?
                .list()
                .await
                .map_err(|e| e.to_string())?,
        )?,
        Command::Reinvoke { id } => {
            let reinvoked = failed_invocations()
                .await?
                .reinvoke(&id)
                .await
                .map_err(|e| e.to_string())?;
            json!({"reinvoked": reinvoked.id, "function": reinvoked.function})
        }
        Command::Sign { .. } => unreachable!("handled before the hub is built"),
        Command::RepublishEvents { from, to } => {
            let parse = |text: &str| {
                shared::clock::parse_rfc3339(text)
                    .ok_or_else(|| format!("{text} is not an RFC 3339 time"))
            };
            let from = parse(&from)?;
            let to = match to {
                Some(to) => parse(&to)?,
                None => shared::clock::now(),
            };
            if to <= from {
                return Err("--to must be after --from".into());
            }
            let report = hub
                .outbox
                .republish(from, to)
                .await
                .map_err(|e| e.to_string())?;
            if !report.complete() {
                return Err(format!(
                    "only {} of {} changes' events were published; run it again",
                    report.published_records, report.records
                )
                .into());
            }
            serde_json::to_value(report)?
        }
        Command::Replay { id } => {
            if !hub
                .dead_letters
                .replay(&id, |source| hub.bus_for_source(source))
                .await?
            {
                return Err(format!("no dead letter {id}").into());
            }
            json!({"replayed": id})
        }
    })
}
