//! OAuth2 authorization-code flow with PKCE (RFC 7636, S256) for connectors that use
//! it: the authorize URL the end-customer opens, the single-use `state` the callback
//! brings back, and the token endpoint's exchange and refresh, through the outbound
//! client. The connector's client id and secret are a deployment's (sealed with KMS).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{EmbedError, catalog::OAuth2Settings};
use crate::{
    clock,
    domain::{AccountId, PartnerId},
    outbound::{OutboundClient, OutboundError, OutboundRequest},
    secrets::{SecretSealer, random_token, token_hash},
    store::{Keys, Record, Table, keys},
};

/// The hub's callback route (the provider's `redirect_uri`).
pub const CALLBACK_PATH: &str = "/api/oauth/callback";
/// How long an end-customer has to finish the provider's consent page.
pub const FLOW_LIFETIME_SECONDS: i64 = 15 * 60;

/// A PKCE verifier (43 characters from 32 random bytes) and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    let verifier = random_token("");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// A started flow, by the hash of its `state`; taken (deleted) by the first callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OAuthFlow {
    pub state_hash: String,
    pub account_id: AccountId,
    pub partner_id: PartnerId,
    pub connection_id: u64,
    pub servertype_id: u64,
    /// Useless without the provider's code, which only the callback brings.
    pub code_verifier: String,
    pub redirect_uri: String,
    pub expires_at: i64,
    /// The connection as the flow started it: the callback plans from it (its revision
    /// guards the write; a connection changed since is read afresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<Box<super::connections::Connection>>,
}

impl Record for OAuthFlow {
    fn keys(&self) -> Keys {
        keys::oauth_state(&self.state_hash)
    }
}

/// A connector's OAuth2 client, as the deployment registered it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OAuthClient {
    pub servertype_id: u64,
    pub client_id: String,
    pub client_secret_sealed: String,
    pub updated_at: String,
}

impl Record for OAuthClient {
    fn keys(&self) -> Keys {
        keys::oauth_client(self.servertype_id)
    }
}

fn client_record(servertype: u64) -> String {
    format!("oauth-client:{servertype}")
}

pub async fn set_client(
    table: &Table,
    sealer: &SecretSealer,
    servertype: u64,
    client_id: &str,
    client_secret: &str,
) -> Result<(), EmbedError> {
    let client_id = client_id.trim();
    if client_id.is_empty() || client_secret.trim().is_empty() {
        return Err(EmbedError::invalid(
            "client",
            "id and secret must not be empty",
        ));
    }
    let sealed = sealer
        .seal(
            client_secret.trim(),
            &client_record(servertype),
            "client_secret",
        )
        .await?;
    table
        .put(&OAuthClient {
            servertype_id: servertype,
            client_id: client_id.to_owned(),
            client_secret_sealed: sealed,
            updated_at: clock::sortable(clock::now()),
        })
        .await?;
    Ok(())
}

/// The connector's client as registered (`hub-admin`), its secret sealed.
pub async fn read_client(table: &Table, servertype: u64) -> Result<OAuthClient, EmbedError> {
    table
        .get(&keys::oauth_client(servertype))
        .await?
        .ok_or(EmbedError::NoOAuthClient(servertype))
}

/// The client's id and secret, opened.
pub async fn open_client(
    client: OAuthClient,
    sealer: &SecretSealer,
) -> Result<(String, String), EmbedError> {
    let secret = sealer
        .open(
            &client.client_secret_sealed,
            &client_record(client.servertype_id),
            "client_secret",
        )
        .await?;
    Ok((client.client_id, secret))
}

/// The provider's authorize URL for a new flow; returns the `state` too.
pub fn authorize_url(
    settings: &OAuth2Settings,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    challenge: &str,
) -> Result<url::Url, EmbedError> {
    let mut url = url::Url::parse(&settings.authorize_url)
        .map_err(|e| EmbedError::OAuthFlow(format!("the connector's authorize URL: {e}")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &settings.scopes.join(" "))
        .append_pair("state", state)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(url)
}

/// A new flow's `state` (the browser carries it) and record (the table keeps it).
pub fn new_flow(
    account_id: AccountId,
    partner_id: PartnerId,
    connection_id: u64,
    servertype_id: u64,
    redirect_uri: &str,
) -> (String, String, OAuthFlow) {
    let state = random_token("st_");
    let (verifier, challenge) = pkce_pair();
    let flow = OAuthFlow {
        state_hash: token_hash(&state),
        account_id,
        partner_id,
        connection_id,
        servertype_id,
        code_verifier: verifier,
        redirect_uri: redirect_uri.to_owned(),
        expires_at: clock::now().unix_timestamp() + FLOW_LIFETIME_SECONDS,
        connection: None,
    };
    (state, challenge, flow)
}

/// Takes the flow a callback's `state` names: once, and only before it expires.
pub async fn take_flow(table: &Table, state: &str) -> Result<OAuthFlow, EmbedError> {
    let refused = || {
        EmbedError::OAuthFlow(
            "this sign-in link is unknown, was already used or has expired; start again from the app"
                .into(),
        )
    };
    if state.is_empty() || state.len() > 200 {
        return Err(refused());
    }
    let flow: OAuthFlow = table
        .take(&keys::oauth_state(&token_hash(state)))
        .await?
        .ok_or_else(refused)?;
    if flow.expires_at < clock::now().unix_timestamp() {
        return Err(refused());
    }
    Ok(flow)
}

/// What the token endpoint answered.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenAnswer {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// Why a token request failed: `Retry` for timeouts, 429 and 5xx; `Refused` when the
/// provider said no (the grant is bad: the end-customer must authorize again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFailure {
    Retry(String),
    Refused(String),
}

impl std::fmt::Display for TokenFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenFailure::Retry(why) | TokenFailure::Refused(why) => f.write_str(why),
        }
    }
}

/// Calls the token endpoint with a grant (client credentials as HTTP Basic, RFC 6749
/// §2.3.1, so the secret is a header the client never logs).
pub async fn token_request(
    outbound: &OutboundClient,
    settings: &OAuth2Settings,
    (client_id, client_secret): (&str, &str),
    grant: &[(&str, &str)],
) -> Result<TokenAnswer, TokenFailure> {
    // Built before any await: the serializer is not `Send`.
    let form = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in grant {
            form.append_pair(name, value);
        }
        form.append_pair("client_id", client_id);
        form.finish()
    };
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        form_encode(client_id),
        form_encode(client_secret)
    ));
    let request = OutboundRequest {
        method: "POST".into(),
        url: settings.token_url.clone(),
        headers: vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("accept".into(), "application/json".into()),
        ],
        secret_headers: vec![("authorization".into(), format!("Basic {basic}"))],
        body: form.into_bytes(),
    };
    match outbound.send(request).await {
        Ok(response) => serde_json::from_slice::<TokenAnswer>(&response.body)
            .ok()
            .filter(|a| !a.access_token.is_empty())
            .ok_or_else(|| {
                TokenFailure::Refused(format!(
                    "the token endpoint's answer has no access_token (status {})",
                    response.status
                ))
            }),
        Err(e) if e.is_retryable() => Err(TokenFailure::Retry(e.to_string())),
        Err(OutboundError::Rejected { status, excerpt }) => Err(TokenFailure::Refused(format!(
            "the token endpoint answered {status}: {}",
            oauth_error(&excerpt)
        ))),
        Err(e) => Err(TokenFailure::Refused(e.to_string())),
    }
}

/// The `error` (and `error_description`) of an OAuth2 error answer, never its whole body.
fn oauth_error(body: &str) -> String {
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    match (
        parsed["error"].as_str(),
        parsed["error_description"].as_str(),
    ) {
        (Some(e), Some(d)) => format!("{e} ({})", d.chars().take(200).collect::<String>()),
        (Some(e), None) => e.to_owned(),
        _ => "no OAuth2 error code".into(),
    }
}

fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_s256_of_the_verifier() {
        let (verifier, challenge) = pkce_pair();
        assert!(verifier.len() >= 43 && verifier.len() <= 128);
        // RFC 7636 appendix B.
        let known = URL_SAFE_NO_PAD.encode(Sha256::digest(
            b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ));
        assert_eq!(known, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(
            challenge,
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
        );
    }

    #[test]
    fn the_authorize_url_carries_state_and_challenge() {
        let settings = OAuth2Settings {
            authorize_url: "https://app.hubspot.com/oauth/authorize".into(),
            token_url: "https://api.hubapi.com/oauth/v1/token".into(),
            scopes: vec!["a".into(), "b".into()],
        };
        let url = authorize_url(
            &settings,
            "cid",
            "https://hub/api/oauth/callback",
            "st",
            "ch",
        )
        .unwrap();
        let pairs: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs["state"], "st");
        assert_eq!(pairs["code_challenge"], "ch");
        assert_eq!(pairs["code_challenge_method"], "S256");
        assert_eq!(pairs["scope"], "a b");
        assert_eq!(pairs["redirect_uri"], "https://hub/api/oauth/callback");
    }

    #[test]
    fn oauth_errors_are_summarised() {
        assert_eq!(
            oauth_error(r#"{"error": "invalid_grant", "error_description": "expired"}"#),
            "invalid_grant (expired)"
        );
        assert_eq!(oauth_error("<html>"), "no OAuth2 error code");
    }
}
