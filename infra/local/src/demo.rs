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
    if let Some(file) = file {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StandInError::Demo(e.to_string()))?;
        }
        let text =
            serde_json::to_string_pretty(&demo).map_err(|e| StandInError::Demo(e.to_string()))?;
        std::fs::write(file, text)
            .map_err(|e| StandInError::Demo(format!("{}: {e}", file.display())))?;
    }
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
    if let Some(file) = file {
        let text =
            serde_json::to_string_pretty(&demo).map_err(|e| StandInError::Demo(e.to_string()))?;
        std::fs::write(file, text)
            .map_err(|e| StandInError::Demo(format!("{}: {e}", file.display())))?;
    }
    Ok(demo)
}
