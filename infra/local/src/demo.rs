//! The demo partner the stand-in seeds, so a new user can call the API at once:
//! `.hub/demo-partner.json` holds its base URL, token and private key.

use std::path::Path;

use rsa::{RsaPrivateKey, pkcs1::DecodeRsaPrivateKey};
use serde::{Deserialize, Serialize};
use shared::{domain::PartnerId, partners::Partners};

use crate::StandInError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoPartner {
    pub base_url: String,
    pub partner_id: PartnerId,
    pub partner_token: String,
    /// Sent as `x-rlv-analytics-key` to read analytics.
    #[serde(default)]
    pub analytics_key: String,
    pub kid: String,
    pub private_key_pem: String,
    pub public_key_pem: String,
}

/// A fresh RSA key pair: (private PKCS#1 PEM, public SPKI PEM).
pub fn generate_key_pair(bits: usize) -> Result<(String, String), StandInError> {
    shared::secrets::generate_rsa_key_pair(bits).map_err(StandInError::Demo)
}

fn key_pair_pems(private: &RsaPrivateKey) -> Result<(String, String), StandInError> {
    shared::secrets::rsa_key_pair_pems(private).map_err(StandInError::Demo)
}

/// Writes a demo's file (pretty JSON), its directory created, when there is one.
fn write_demo_file(file: Option<&Path>, demo: &impl Serialize) -> Result<(), StandInError> {
    let Some(file) = file else {
        return Ok(());
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| StandInError::Demo(e.to_string()))?;
    }
    let text = serde_json::to_string_pretty(demo).map_err(|e| StandInError::Demo(e.to_string()))?;
    std::fs::write(file, text).map_err(|e| StandInError::Demo(format!("{}: {e}", file.display())))
}

/// Registers the demo partner, reusing the key and token of an earlier run's file (the
/// emulator starts empty each run, the file survives), and writes the file.
pub async fn seed(
    partners: &Partners,
    base_url: &str,
    file: Option<&Path>,
) -> Result<DemoPartner, StandInError> {
    let previous: Option<DemoPartner> = file
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|text| serde_json::from_str(&text).ok());
    let (private_key_pem, public_key_pem, token, analytics_key) = match previous {
        Some(p) if RsaPrivateKey::from_pkcs1_pem(&p.private_key_pem).is_ok() => {
            let private = RsaPrivateKey::from_pkcs1_pem(&p.private_key_pem)
                .map_err(|e| StandInError::Demo(e.to_string()))?;
            let (private_pem, public_pem) = key_pair_pems(&private)?;
            (
                private_pem,
                public_pem,
                Some(p.partner_token),
                Some(p.analytics_key),
            )
        }
        _ => {
            let (private_pem, public_pem) = generate_key_pair(2048)?;
            (private_pem, public_pem, None, None)
        }
    };
    let registration = partners
        .register("Demo Partner", &public_key_pem, token)
        .await
        .map_err(|e| StandInError::Demo(e.to_string()))?;
    let analytics_key = partners
        .issue_analytics_key(registration.partner_id, analytics_key)
        .await
        .map_err(|e| StandInError::Demo(e.to_string()))?;
    let demo = DemoPartner {
        base_url: base_url.to_owned(),
        partner_id: registration.partner_id,
        partner_token: registration.partner_token,
        analytics_key,
        kid: registration.kid,
        private_key_pem,
        public_key_pem,
    };
    write_demo_file(file, &demo)?;
    Ok(demo)
}

/// The demo marketplace the stand-in seeds: `.hub/demo-marketplace.json` holds the
/// callback URL and the key it sends as `Authorization: Bearer <token>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoMarketplace {
    pub base_url: String,
    pub callback_url: String,
    pub marketplace_id: PartnerId,
    pub token: String,
}

/// Registers the demo marketplace, reusing an earlier run's token, and writes the file.
pub async fn seed_marketplace(
    partners: &Partners,
    base_url: &str,
    file: Option<&Path>,
) -> Result<DemoMarketplace, StandInError> {
    let previous: Option<DemoMarketplace> = file
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|text| serde_json::from_str(&text).ok());
    let registration = partners
        .register_marketplace("Demo Marketplace", previous.map(|p| p.token))
        .await
        .map_err(|e| StandInError::Demo(e.to_string()))?;
    let demo = DemoMarketplace {
        base_url: base_url.to_owned(),
        callback_url: format!("{base_url}/etvas-events"),
        marketplace_id: registration.partner_id,
        token: registration.partner_token,
    };
    write_demo_file(file, &demo)?;
    Ok(demo)
}

/// The demo loyalty site the stand-in seeds for the demo partner, activated against the
/// fake SMS gateway: `.hub/demo-site.json` holds its id, access token and webhook secret
/// (new each run: the emulator starts empty).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoSite {
    pub base_url: String,
    pub site_id: u64,
    pub access_token: String,
    pub webhook_secret: String,
}

/// The contract's sample tokens: the fake gateway accepts any bearer.
const DEMO_APP_TOKEN: &str = "elNnY1pFcXRwSmJNTFlkRnVIdU1nSFhoRUE5QURxeno1VFc4";
const DEMO_MESSAGES_TOKEN: &str = "EJ0S7a5v27DkZuxxtIxjyIq3S54ac4dNm8NDLf8sMK8";

pub async fn seed_site(
    sms: &shared::sms::Sms,
    partner: PartnerId,
    base_url: &str,
    file: Option<&Path>,
) -> Result<DemoSite, StandInError> {
    let demo_err = |e: shared::sms::SmsError| StandInError::Demo(e.to_string());
    let site = sms
        .register_site(partner, "Demo loyalty site")
        .await
        .map_err(demo_err)?;
    sms.activate(
        site.site_id,
        shared::sms::ActivationRequest {
            sign_up_source_id: "132109".into(),
            app_token: DEMO_APP_TOKEN.into(),
            messages_token: DEMO_MESSAGES_TOKEN.into(),
            default_country: shared::sms::default_country(),
            time_zone: "America/New_York".into(),
            sending_hours: shared::sms::quiet::SendingHours::default(),
            rate_per_second: 10,
        },
    )
    .await
    .map_err(demo_err)?;
    let demo = DemoSite {
        base_url: base_url.to_owned(),
        site_id: site.site_id,
        access_token: site.access_token,
        webhook_secret: site.webhook_secret,
    };
    write_demo_file(file, &demo)?;
    Ok(demo)
}

/// The demo partner's embed API side: `.hub/demo-embed.json` holds its partner token
/// (`Authorization: JWT <token>`) and the browser origin registered for it; HubSpot's
/// OAuth2 client is set to the fake provider's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoEmbed {
    pub base_url: String,
    pub partner_token: String,
    pub origin: String,
}

/// The origin a local page of the partner would call from.
pub const DEMO_ORIGIN: &str = "http://localhost:8080";
/// The OAuth2 client the stand-in registers for every OAuth2 connector (the fake
/// provider accepts any client; a deployment registers its own with hub-admin).
pub const DEMO_OAUTH_CLIENT_ID: &str = "local-client-id";
pub const DEMO_OAUTH_CLIENT_SECRET: &str = "local-client-secret";

pub async fn seed_embed(
    embed: &shared::embed::Embed,
    partner: PartnerId,
    base_url: &str,
    file: Option<&Path>,
) -> Result<DemoEmbed, StandInError> {
    let demo_err = |e: shared::embed::EmbedError| StandInError::Demo(e.to_string());
    let origin = embed
        .add_origin(partner, DEMO_ORIGIN)
        .await
        .map_err(demo_err)?;
    for server in shared::embed::catalog::all()
        .iter()
        .filter(|s| s.oauth2.is_some())
    {
        shared::embed::oauth::set_client(
            embed.uow().table(),
            embed.sealer(),
            server.id,
            DEMO_OAUTH_CLIENT_ID,
            DEMO_OAUTH_CLIENT_SECRET,
        )
        .await
        .map_err(demo_err)?;
    }
    let token = embed.issue_partner_token(partner).await.map_err(demo_err)?;
    let demo = DemoEmbed {
        base_url: base_url.to_owned(),
        partner_token: token.token,
        origin,
    };
    write_demo_file(file, &demo)?;
    Ok(demo)
}
