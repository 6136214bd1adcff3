//! The fake OAuth2 provider: plays every OAuth2 connector of the catalog
//! (`shared::embed::catalog`) for calls the recorder receives for its hosts. The
//! authorize page redirects the browser straight back to the `redirect_uri` with a code
//! (consent is given at once); the token endpoint checks what a real one does (the
//! code is single-use, the `redirect_uri` the same, the PKCE verifier matches the
//! challenge, the client is the code's) and issues access tokens (30 minutes) and
//! refresh tokens. Scripted answers (`POST /_local/outbound/script`) still come first:
//! refusals and outages are injected there.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::http::{HeaderMap, StatusCode};
use base64::{Engine, engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::embed::catalog;

/// The access tokens' lifetime, in seconds.
pub const ACCESS_TOKEN_SECONDS: u64 = 1800;

struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scope: String,
}

#[derive(Default)]
struct State {
    codes: HashMap<String, Grant>,
    /// Refresh token -> (client id, scope).
    refresh_tokens: HashMap<String, (String, String)>,
    issued: u64,
}

#[derive(Clone, Default)]
pub struct FakeOAuthProvider {
    state: Arc<Mutex<State>>,
}

/// What the provider answers: a status, a JSON body and headers.
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

fn error(status: StatusCode, code: &str, description: &str) -> Answer {
    Answer {
        status,
        body: json!({"error": code, "error_description": description}),
        headers: Vec::new(),
    }
}

fn host_and_path(url: &str) -> Option<(String, String)> {
    let url = url::Url::parse(url).ok()?;
    Some((url.host_str()?.to_owned(), url.path().to_owned()))
}

fn random() -> String {
    shared::secrets::random_hex16()
}

impl FakeOAuthProvider {
    /// Whether a call to `host` + `path` is the provider's (an authorize or token URL of
    /// an OAuth2 connector).
    pub fn plays(&self, host: &str, path: &str) -> bool {
        catalog::all()
            .iter()
            .filter_map(|s| s.oauth2.as_ref())
            .any(|o| {
                [&o.authorize_url, &o.token_url]
                    .into_iter()
                    .filter_map(|u| host_and_path(u))
                    .any(|(h, p)| h == host && p == path)
            })
    }

    pub fn answer(
        &self,
        host: &str,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Answer {
        let is_authorize = catalog::all()
            .iter()
            .filter_map(|s| s.oauth2.as_ref())
            .filter_map(|o| host_and_path(&o.authorize_url))
            .any(|(h, p)| h == host && p == path);
        if is_authorize {
            self.authorize(query)
        } else {
            self.token(headers, body)
        }
    }

    fn authorize(&self, query: &str) -> Answer {
        let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let get = |name: &str| params.get(name).cloned().unwrap_or_default();
        if get("response_type") != "code"
            || get("client_id").is_empty()
            || get("state").is_empty()
            || get("code_challenge_method") != "S256"
            || get("code_challenge").len() < 43
        {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "response_type=code, client_id, state and an S256 code_challenge are required",
            );
        }
        let Ok(mut redirect) = url::Url::parse(&get("redirect_uri")) else {
            return error(StatusCode::BAD_REQUEST, "invalid_request", "redirect_uri");
        };
        let code = format!("code_{}", random());
        if let Ok(mut state) = self.state.lock() {
            state.codes.insert(
                code.clone(),
                Grant {
                    client_id: get("client_id"),
                    redirect_uri: get("redirect_uri"),
                    challenge: get("code_challenge"),
                    scope: get("scope"),
                },
            );
        }
        redirect
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &get("state"));
        Answer {
            status: StatusCode::FOUND,
            body: json!({"redirect": redirect.as_str()}),
            headers: vec![("location".into(), redirect.to_string())],
        }
    }

    fn token(&self, headers: &HeaderMap, body: &[u8]) -> Answer {
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let get = |name: &str| form.get(name).cloned().unwrap_or_default();
        // client_secret_basic: `Basic base64(id:secret)`.
        let client_id = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|pair| pair.split_once(':').map(|(id, _)| id.to_owned()));
        let Some(client_id) = client_id else {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            );
        };
        let Ok(mut state) = self.state.lock() else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "lock");
        };
        let scope = match get("grant_type").as_str() {
            "authorization_code" => {
                let Some(grant) = state.codes.remove(&get("code")) else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "unknown or used code",
                    );
                };
                let challenge =
                    URL_SAFE_NO_PAD.encode(Sha256::digest(get("code_verifier").as_bytes()));
                if grant.client_id != client_id
                    || grant.redirect_uri != get("redirect_uri")
                    || grant.challenge != challenge
                {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "client, redirect_uri or code_verifier does not match",
                    );
                }
                grant.scope
            }
            "refresh_token" => match state.refresh_tokens.get(&get("refresh_token")) {
                Some((id, scope)) if *id == client_id => scope.clone(),
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "unknown refresh token",
                    );
                }
            },
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "grant_type",
                );
            }
        };
        state.issued += 1;
        let refresh_token = match get("grant_type").as_str() {
            "refresh_token" => get("refresh_token"),
            _ => {
                let token = format!("rt_{}", random());
                state
                    .refresh_tokens
                    .insert(token.clone(), (client_id.clone(), scope.clone()));
                token
            }
        };
        Answer {
            status: StatusCode::OK,
            body: json!({
                "access_token": format!("at_{}_{}", state.issued, random()),
                "refresh_token": refresh_token,
                "token_type": "bearer",
                "expires_in": ACCESS_TOKEN_SECONDS,
                "scope": scope,
            }),
            headers: Vec::new(),
        }
    }
}
