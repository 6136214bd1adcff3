//! A sub-account's connections ("servers" in the contract): created from a connector's
//! form (secret fields sealed with KMS, never shown or logged) or through its OAuth2
//! flow (`pending` until the callback, `connected` once the code is exchanged), access
//! tokens refreshed before they expire (due items), and a log of what happened to each.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::{
    Embed, EmbedError, SubAccount,
    catalog::{self, AuthKind, ServerType},
    oauth::{self, TokenAnswer, TokenFailure},
};
use crate::{
    clock,
    domain::{AccountId, PartnerId},
    outbound::OutboundClient,
    store::{FirstRead, Keys, Planned, Query, Record, Tx, keys, keys::Due},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Waiting for the end-customer to finish the OAuth2 flow.
    Pending,
    Connected,
    /// The provider refused a refresh: the end-customer must authorize again.
    NeedsReauth,
    /// The flow failed (refused consent, a bad code).
    Error,
}

/// OAuth2 tokens, sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedTokens {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    pub id: u64,
    pub account_id: AccountId,
    pub partner_id: PartnerId,
    pub sub_account: u64,
    pub servertype_id: u64,
    pub status: ConnectionStatus,
    /// Why it is in `error` or `needs_reauth` (never a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// The form's public values.
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
    /// The form's secret values, sealed (by field name).
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<SealedTokens>,
    /// When the access token is to be refreshed (the due item's time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_at: Option<String>,
    #[serde(default)]
    pub refresh_failures: u32,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<String>,
    pub revision: u64,
}

impl Record for Connection {
    fn keys(&self) -> Keys {
        let keys = keys::connection(self.account_id, self.id);
        match &self.refresh_at {
            Some(at) if self.status == ConnectionStatus::Connected => {
                keys.due(Due::OAuthRefresh, at.clone())
            }
            _ => keys,
        }
    }
}

impl Connection {
    fn seal_record(&self) -> String {
        format!("connection:{}:{}", self.account_id, self.id)
    }
}

/// One line of a connection's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionLog {
    pub account_id: AccountId,
    pub connection_id: u64,
    pub at: String,
    /// `created`, `authorized`, `refreshed`, `failed`, `needs_reauth`.
    pub event: String,
    pub message: String,
    /// Logs go after 90 days (DynamoDB's TTL), so a connection's log stays bounded.
    pub expires_at: i64,
}

impl Record for ConnectionLog {
    fn keys(&self) -> Keys {
        keys::connection_log(self.account_id, self.connection_id, &self.at)
    }
}

const LOG_DAYS: i64 = 90;
/// Most log lines one `GET .../logs` answers (newest first).
pub const MAX_LOG_LINES: usize = 100;
/// Transient refresh failures tolerated before the connection needs the end-customer.
const MAX_REFRESH_FAILURES: u32 = 5;

fn log(connection: &Connection, event: &str, message: impl Into<String>) -> ConnectionLog {
    let now = clock::now();
    ConnectionLog {
        account_id: connection.account_id,
        connection_id: connection.id,
        // Microseconds plus the event keep two lines of one instant apart.
        at: format!("{}#{event}", clock::sortable(now)),
        event: event.to_owned(),
        message: message.into(),
        expires_at: now.unix_timestamp() + LOG_DAYS * 86_400,
    }
}

/// What `POST /api/servers` made.
pub struct Created {
    pub connection: Connection,
    /// For OAuth2 connectors: where the end-customer authorizes.
    pub oauth_url: Option<String>,
}

/// When to refresh a token that expires at `expires`: at four fifths of its life, and
/// at least a minute before it ends.
fn refresh_time(now: OffsetDateTime, expires_in: u64) -> (String, String) {
    let life = time::Duration::seconds(expires_in.min(10 * 365 * 86_400) as i64);
    let expires = now + life;
    let margin: time::Duration = (life / 5i32).max(time::Duration::seconds(60));
    (clock::sortable(expires - margin), clock::sortable(expires))
}

/// A page of connections and the cursor of the next.
pub struct ConnectionPage {
    pub items: Vec<Connection>,
    pub next: Option<u64>,
}

/// What a refresh run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RefreshReport {
    pub due: usize,
    pub refreshed: usize,
    pub retried: usize,
    pub needs_reauth: usize,
}

impl Embed {
    pub async fn connection(&self, sub: &SubAccount, id: u64) -> Result<Connection, EmbedError> {
        self.table()
            .get::<Connection>(&keys::connection(sub.account_id, id))
            .await?
            .ok_or(EmbedError::UnknownConnection)
    }

    pub async fn list_connections(
        &self,
        sub: &SubAccount,
        limit: usize,
        after: Option<u64>,
    ) -> Result<ConnectionPage, EmbedError> {
        let query = Query::partition(keys::account_partition(sub.account_id))
            .sort_begins_with(keys::CONNECTION_PREFIX);
        let start = after.map(|id| keys::connection(sub.account_id, id));
        let (items, more): (Vec<Connection>, bool) =
            self.table().query_page(&query, limit, start).await?;
        let next = if more {
            items.last().map(|c| c.id)
        } else {
            None
        };
        Ok(ConnectionPage { items, next })
    }

    /// The connection's log, newest first.
    pub async fn connection_logs(
        &self,
        account: AccountId,
        id: u64,
    ) -> Result<Vec<ConnectionLog>, EmbedError> {
        let (_, mut logs) = self.connection_with_log(account, id).await?;
        let now = clock::now().unix_timestamp();
        logs.retain(|l| l.expires_at > now);
        logs.reverse();
        logs.truncate(MAX_LOG_LINES);
        Ok(logs)
    }

    /// A connection of the sub-account `account` and its log, read together.
    pub async fn connection_with_log(
        &self,
        account: AccountId,
        id: u64,
    ) -> Result<(Connection, Vec<ConnectionLog>), EmbedError> {
        let query = Query::partition(keys::account_partition(account))
            .sort_begins_with(keys::connection_log_prefix(id));
        let connection = async {
            self.table()
                .get::<Connection>(&keys::connection(account, id))
                .await?
                .ok_or(EmbedError::UnknownConnection)
        };
        tokio::try_join!(connection, async {
            Ok::<Vec<ConnectionLog>, EmbedError>(self.table().query_all(&query).await?)
        })
    }

    /// Creates a connection from a `POST /api/servers` body (less `servertype_id`);
    /// `request_host` is the `Host` the request came to (see `oauth_redirect_uri`).
    pub async fn create_connection(
        &self,
        sub: &SubAccount,
        server: &ServerType,
        form: &serde_json::Map<String, Value>,
        outbound: &OutboundClient,
        request_host: Option<&str>,
    ) -> Result<Created, EmbedError> {
        let values = server.check_form(form)?;
        let oauth = match (&server.auth, &server.oauth2) {
            (AuthKind::Oauth2, Some(settings)) => Some((
                settings,
                self.oauth_client(server.id).await?.client_id,
                self.oauth_redirect_uri(request_host)?,
            )),
            _ => None,
        };
        // The id is the sub-account's next (its record, as the token's check read it,
        // is written with the connection on the condition that it did not change: a
        // connection is never added to a sub-account deleted meanwhile).
        let first = FirstRead::new(Some(sub.clone()));
        self.uow()
            .apply(|| async {
                let current = first
                    .or_read(|| async {
                        self.sub_account(sub.partner_id, sub.number)
                            .await?
                            .filter(|s| s.token_version == sub.token_version)
                            .ok_or(EmbedError::UnknownSubAccount)
                    })
                    .await?;
                let mut tx = Tx::new();
                let id = match current.last_connection {
                    Some(last) => {
                        let mut next = current.clone();
                        next.last_connection = Some(last + 1);
                        next.revision += 1;
                        tx.put_revision(&next, Some(current.revision))?
                            .put(&super::ExternalIdClaim::of(&next))?;
                        10_000 + last + 1
                    }
                    // Sub-accounts from before ids were theirs: the global counter.
                    None => 10_000 + self.table().next_id("CONNECTION").await?,
                };
                let now = clock::sortable(clock::now());
                let mut connection = Connection {
                    id,
                    account_id: sub.account_id,
                    partner_id: sub.partner_id,
                    sub_account: sub.number,
                    servertype_id: server.id,
                    status: ConnectionStatus::Connected,
                    status_reason: None,
                    fields: values.public.clone(),
                    secrets: BTreeMap::new(),
                    tokens: None,
                    refresh_at: None,
                    refresh_failures: 0,
                    created_at: now.clone(),
                    updated_at: now.clone(),
                    connected_at: Some(now),
                    refreshed_at: None,
                    revision: 1,
                };
                let record = connection.seal_record();
                for (name, value) in &values.secret {
                    let sealed = self.sealer().seal(value, &record, name).await?;
                    connection.secrets.insert(name.clone(), sealed);
                }
                let mut flow = None;
                let oauth_url = match &oauth {
                    Some((settings, client_id, redirect_uri)) => {
                        let (state, challenge, started) = oauth::new_flow(
                            sub.account_id,
                            sub.partner_id,
                            id,
                            server.id,
                            redirect_uri,
                        );
                        connection.status = ConnectionStatus::Pending;
                        connection.connected_at = None;
                        let url = oauth::authorize_url(
                            settings,
                            client_id,
                            redirect_uri,
                            &state,
                            &challenge,
                        )?;
                        flow = Some(started);
                        Some(outbound.browser_url(&url).to_string())
                    }
                    None => None,
                };
                let created = log(
                    &connection,
                    "created",
                    match oauth_url {
                        Some(_) => format!(
                            "{} connection created; waiting for the end-customer to authorize",
                            server.name
                        ),
                        None => format!(
                            "{} connection created with fields {}",
                            server.name,
                            form.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    },
                );
                tx.put_new(&connection)?.put(&created)?;
                if let Some(mut flow) = flow {
                    flow.connection = Some(Box::new(connection.clone()));
                    tx.put_new(&flow)?;
                }
                Ok::<_, EmbedError>(Planned::new(
                    tx,
                    Created {
                        connection,
                        oauth_url,
                    },
                ))
            })
            .await
    }

    /// Deletes a connection, its sealed credentials and its log, as
    /// [`connection_with_log`](Self::connection_with_log) read them (one request).
    pub async fn delete_connection(
        &self,
        (connection, logs): (Connection, Vec<ConnectionLog>),
    ) -> Result<(), EmbedError> {
        let mut doomed: Vec<Keys> = logs.iter().map(Record::keys).collect();
        doomed.push(connection.keys());
        self.table().delete_many(&doomed).await?;
        Ok(())
    }

    /// The OAuth2 callback: takes the flow `state` names (once), exchanges the code and
    /// connects; a provider's `error` (refused consent) marks the connection `error`.
    /// Answers the connection as it now is.
    pub async fn complete_oauth(
        &self,
        state: &str,
        code: Option<&str>,
        provider_error: Option<&str>,
        outbound: &OutboundClient,
    ) -> Result<Connection, EmbedError> {
        // The sealing key is made ready beside the flow's read (the tokens are sealed).
        let (flow, prepared) = tokio::join!(
            oauth::take_flow(self.table(), state),
            self.sealer().prepare()
        );
        let flow = flow?;
        if let Err(e) = prepared {
            tracing::warn!(error = %e, "the sealing key could not be made ready");
        }
        let server = catalog::find(flow.servertype_id)
            .ok_or_else(|| EmbedError::OAuthFlow("the connector no longer exists".into()))?;
        let settings = server
            .oauth2
            .as_ref()
            .ok_or_else(|| EmbedError::OAuthFlow("the connector has no OAuth2 settings".into()))?;
        let outcome = match (code, provider_error) {
            (_, Some(error)) => Err(format!(
                "the end-customer did not authorize ({})",
                error.chars().take(100).collect::<String>()
            )),
            (None | Some(""), None) => Err("the provider sent no code".to_owned()),
            (Some(code), None) => {
                let (client_id, client_secret) =
                    oauth::open_client(self.oauth_client(server.id).await?, self.sealer()).await?;
                oauth::token_request(
                    outbound,
                    settings,
                    (&client_id, &client_secret),
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", code),
                        ("redirect_uri", &flow.redirect_uri),
                        ("code_verifier", &flow.code_verifier),
                    ],
                )
                .await
                .map_err(|e| e.to_string())
            }
        };
        let sealed = match &outcome {
            Ok(answer) => Some(
                self.seal_tokens(
                    &flow.account_id,
                    flow.connection_id,
                    answer,
                    None,
                    clock::now(),
                )
                .await?,
            ),
            Err(_) => None,
        };
        let first = FirstRead::new(flow.connection.clone().map(|c| *c));
        self.uow()
            .apply(|| async {
                let current: Connection = first
                    .or_read(|| async {
                        self.table()
                            .get(&keys::connection(flow.account_id, flow.connection_id))
                            .await?
                            .ok_or(EmbedError::UnknownConnection)
                    })
                    .await?;
                let mut next = current.clone();
                let now = clock::now();
                next.updated_at = clock::sortable(now);
                next.revision += 1;
                let line = match (&outcome, &sealed) {
                    (Ok(answer), Some((tokens, refresh_at))) => {
                        next.status = ConnectionStatus::Connected;
                        next.status_reason = None;
                        next.tokens = Some(tokens.clone());
                        next.refresh_at = refresh_at.clone();
                        next.refresh_failures = 0;
                        next.connected_at = Some(next.updated_at.clone());
                        let scope = answer
                            .scope
                            .as_deref()
                            .map(|s| format!(" (scope {s})"))
                            .unwrap_or_default();
                        log(
                            &next,
                            "authorized",
                            format!("{} authorized{scope}", server.name),
                        )
                    }
                    (outcome, _) => {
                        let why = match outcome {
                            Err(why) => why.clone(),
                            Ok(_) => "no tokens".to_owned(),
                        };
                        next.status = ConnectionStatus::Error;
                        next.status_reason = Some(why.clone());
                        log(&next, "failed", why)
                    }
                };
                let mut tx = Tx::new();
                tx.put_revision(&next, Some(current.revision))?.put(&line)?;
                Ok::<_, EmbedError>(Planned::new(tx, next))
            })
            .await
    }

    /// Seals a token answer; `previous_refresh` is kept when the provider sends none.
    async fn seal_tokens(
        &self,
        account: &AccountId,
        connection_id: u64,
        answer: &TokenAnswer,
        previous_refresh: Option<String>,
        now: OffsetDateTime,
    ) -> Result<(SealedTokens, Option<String>), EmbedError> {
        let record = format!("connection:{account}:{connection_id}");
        let access = self
            .sealer()
            .seal(&answer.access_token, &record, "access_token")
            .await?;
        let refresh = match &answer.refresh_token {
            Some(token) => Some(self.sealer().seal(token, &record, "refresh_token").await?),
            None => previous_refresh,
        };
        let (refresh_at, expires_at) = match answer.expires_in {
            Some(seconds) => {
                let (at, expires) = refresh_time(now, seconds);
                (Some(at), Some(expires))
            }
            None => (None, None),
        };
        // Without a refresh token there is nothing to refresh with.
        let refresh_at = refresh.as_ref().and(refresh_at);
        Ok((
            SealedTokens {
                access_token: access,
                refresh_token: refresh,
                expires_at,
                scope: answer.scope.clone(),
            },
            refresh_at,
        ))
    }

    /// Refreshes every connection whose access token is due (the scheduled job).
    pub async fn refresh_due(
        &self,
        now: OffsetDateTime,
        outbound: &OutboundClient,
    ) -> Result<RefreshReport, EmbedError> {
        let due: Vec<Connection> = self
            .table()
            .query_all(&Query::due(Due::OAuthRefresh, clock::sortable(now)))
            .await?;
        let mut report = RefreshReport {
            due: due.len(),
            ..RefreshReport::default()
        };
        for connection in due {
            match self.refresh_one(connection, now, outbound).await? {
                ConnectionStatus::Connected => report.refreshed += 1,
                ConnectionStatus::NeedsReauth => report.needs_reauth += 1,
                _ => report.retried += 1,
            }
        }
        Ok(report)
    }

    /// One refresh: `Connected` when refreshed, `NeedsReauth` when the provider refused
    /// (or kept failing), `Pending` when it is tried again later.
    async fn refresh_one(
        &self,
        connection: Connection,
        now: OffsetDateTime,
        outbound: &OutboundClient,
    ) -> Result<ConnectionStatus, EmbedError> {
        let server = catalog::find(connection.servertype_id);
        let settings = server.and_then(|s| s.oauth2.as_ref());
        let sealed_refresh = connection
            .tokens
            .as_ref()
            .and_then(|t| t.refresh_token.clone());
        let outcome = match (settings, &sealed_refresh) {
            (Some(settings), Some(sealed)) => {
                let refresh = self
                    .sealer()
                    .open(sealed, &connection.seal_record(), "refresh_token")
                    .await?;
                let (client_id, client_secret) = oauth::open_client(
                    self.oauth_client(connection.servertype_id).await?,
                    self.sealer(),
                )
                .await?;
                oauth::token_request(
                    outbound,
                    settings,
                    (&client_id, &client_secret),
                    &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                )
                .await
            }
            _ => Err(TokenFailure::Refused("no refresh token".into())),
        };
        let sealed = match &outcome {
            Ok(answer) => Some(
                self.seal_tokens(
                    &connection.account_id,
                    connection.id,
                    answer,
                    sealed_refresh.clone(),
                    now,
                )
                .await?,
            ),
            Err(_) => None,
        };
        let mut next = connection.clone();
        next.updated_at = clock::sortable(now);
        next.revision += 1;
        let (status, line) = match (sealed, outcome) {
            (Some((tokens, refresh_at)), _) => {
                next.tokens = Some(tokens);
                next.refresh_at = refresh_at;
                next.refresh_failures = 0;
                next.refreshed_at = Some(next.updated_at.clone());
                (
                    ConnectionStatus::Connected,
                    log(&next, "refreshed", "access token refreshed"),
                )
            }
            (None, Err(TokenFailure::Retry(why)))
                if connection.refresh_failures + 1 < MAX_REFRESH_FAILURES =>
            {
                next.refresh_failures += 1;
                let wait = time::Duration::minutes(5 * i64::from(next.refresh_failures));
                next.refresh_at = Some(clock::sortable(now + wait));
                (
                    ConnectionStatus::Pending,
                    log(
                        &next,
                        "failed",
                        format!(
                            "refresh failed, retrying in {} minutes: {why}",
                            wait.whole_minutes()
                        ),
                    ),
                )
            }
            (None, outcome) => {
                let failure = match outcome {
                    Err(failure) => failure,
                    Ok(_) => TokenFailure::Refused("no tokens".into()),
                };
                next.status = ConnectionStatus::NeedsReauth;
                next.status_reason = Some(failure.to_string());
                next.refresh_at = None;
                (
                    ConnectionStatus::NeedsReauth,
                    log(
                        &next,
                        "needs_reauth",
                        format!(
                            "refresh refused; the end-customer must authorize again: {failure}"
                        ),
                    ),
                )
            }
        };
        let mut tx = Tx::new();
        tx.put_revision(&next, Some(connection.revision))?
            .put(&line)?;
        // A lost condition: the connection changed (deleted, re-authorized) meanwhile.
        self.uow().commit_once(tx).await?;
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_refreshed_before_they_expire() {
        let now = time::macros::datetime!(2026-12-01 10:00:00 UTC);
        let (at, expires) = refresh_time(now, 1800);
        assert_eq!(expires, "2026-12-01T10:30:00.000000Z");
        assert_eq!(at, "2026-12-01T10:24:00.000000Z");
        let (at, _) = refresh_time(now, 120);
        assert_eq!(at, "2026-12-01T10:01:00.000000Z");
    }
}
