//! Partners: who they are, how they authenticate (a token stored as a hash) and the
//! public keys that verify their signed payloads (several, by key id, for rotation).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    cache::TtlCache,
    clock,
    domain::{AwsAccountId, PartnerId},
    secrets::{random_token, token_hash, token_matches},
    store::{Keys, Planned, Query, Record, StoreError, Table, Tx, TxError, UnitOfWork, keys},
};

const TOKEN_PREFIX: &str = "pt_";
/// Analytics keys read `ak_<partner id, 32 hex>_<secret>`: the id finds the partner in
/// one read, the secret is compared with its stored hash in constant time.
const ANALYTICS_KEY_PREFIX: &str = "ak_";

#[derive(Debug, thiserror::Error)]
pub enum PartnerError {
    #[error("the partner token header is missing")]
    MissingToken,
    #[error("the partner token is not valid")]
    UnknownToken,
    #[error("the analytics key header is missing")]
    MissingAnalyticsKey,
    #[error("the analytics key is not valid")]
    UnknownAnalyticsKey,
    #[error("partner {0} does not exist")]
    UnknownPartner(PartnerId),
    #[error("the public key is not a PEM-encoded RSA public key")]
    InvalidPublicKey,
    #[error("the partner name must not be empty")]
    EmptyName,
    #[error("the event source {0} is registered to another partner")]
    SourceTaken(String),
    #[error("invalid event routing: {0}")]
    InvalidRoute(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tx(#[from] TxError),
}

/// How a partner talks to the hub over EventBridge: the `source` its events carry (the
/// hub identifies the partner by it, never by the envelope's `account`) and the ARN of
/// the partner's bus that receives the hub's answers. One item per source, so the
/// lookup is one read and a source belongs to one partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerRoute {
    pub source: String,
    pub partner_id: PartnerId,
    pub partner_name: String,
    pub bus_arn: String,
    /// The AWS accounts the partner sends from: an event with this source from any
    /// other account is refused (EventBridge stamps the sender's account; it cannot be
    /// forged, unlike the source).
    #[serde(default)]
    pub accounts: Vec<AwsAccountId>,
}

impl PartnerRoute {
    /// Whether an envelope from `account` may act for this source.
    pub fn admits(&self, account: Option<&str>) -> bool {
        account.is_some_and(|a| self.accounts.iter().any(|bound| bound.as_str() == a))
    }
}

impl Record for PartnerRoute {
    fn keys(&self) -> Keys {
        keys::partner_source(&self.source)
    }
}

/// A public key registered for a partner; `kid` selects it when a payload names one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerKey {
    pub kid: String,
    pub public_key_pem: String,
    pub added_at: String,
}

/// What kind of caller a partner record is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerKind {
    /// An integrator that calls the hub's partner APIs with signed payloads.
    #[default]
    Integrator,
    /// A marketplace that posts its customers' lifecycle events to the hub's callback
    /// (`/etvas-events`), authenticated by its token as a bearer key.
    Marketplace,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partner {
    pub id: PartnerId,
    #[serde(default)]
    pub kind: PartnerKind,
    pub name: String,
    pub token_hash: String,
    pub keys: Vec<PartnerKey>,
    pub created_at: String,
    /// The partner's EventBridge routing (`set_event_route`), if it uses events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_route: Option<EventRoute>,
    /// SHA-256 of the partner's analytics key (`issue_analytics_key`), if it has one.
    /// Analytics are read with this key, never with the partner token alone: the
    /// token travels in SSO links that shop users see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analytics_key_hash: Option<String>,
    /// The embed API: the version every partner token of this partner carries; bumping
    /// it revokes them all at once.
    #[serde(default)]
    pub embed_token_version: u64,
    /// Browser origins (`https://acme.com`) whose pages call the embed API with this
    /// partner's tokens: its responses carry CORS headers for them only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub embed_origins: Vec<String>,
    /// Where the hub sends the partner's webhooks (signed-payload contract §5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<PartnerWebhook>,
}

/// A partner's webhook endpoint: the base URL of its service (the contract's paths are
/// appended) and the Standard Webhooks signing secret, sealed with KMS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerWebhook {
    pub base_url: String,
    pub secret_sealed: String,
    pub updated_at: String,
    /// Since when every attempt failed (cleared by a success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// Set after five days of failures: nothing is sent until an operator enables it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
}

/// The partner's side of EventBridge, as kept on its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRoute {
    pub source: String,
    pub bus_arn: String,
    #[serde(default)]
    pub accounts: Vec<AwsAccountId>,
}

impl Record for Partner {
    fn keys(&self) -> Keys {
        keys::partner(self.id).with_gsi1(keys::partner_token_gsi1pk(&self.token_hash), "PARTNER")
    }
}

/// A newly registered partner and its token, shown once.
#[derive(Debug, Clone, Serialize)]
pub struct Registration {
    pub partner_id: PartnerId,
    pub partner_token: String,
    pub kid: String,
}

#[derive(Clone, Debug)]
pub struct Partners {
    uow: UnitOfWork,
    /// Partners found by token, for `PARTNER_CACHE_SECONDS`: a revoked token or a changed
    /// key takes effect in a warm function within that time.
    by_token: TtlCache<String, Partner>,
    /// Integrators found by analytics key, likewise (apart: a key is no token).
    by_analytics_key: TtlCache<String, Partner>,
    /// Partners by id, likewise ([`Partners::get_cached`]).
    by_id: TtlCache<PartnerId, Partner>,
    /// Event routes by source, likewise ([`Partners::route_for_source`]).
    routes_by_source: TtlCache<String, PartnerRoute>,
}

/// The most tokens a function remembers (a partner's calls use one or two).
const CACHED_TOKENS: usize = 1000;

impl Partners {
    /// No caching: every call reads the partner (operators' tools, tests of revocation).
    pub fn new(uow: UnitOfWork) -> Self {
        Self::caching(uow, Duration::ZERO)
    }

    /// Partners found by token are kept for `cache_for` per process.
    pub fn caching(uow: UnitOfWork, cache_for: Duration) -> Self {
        Self {
            uow,
            by_token: TtlCache::new(cache_for, CACHED_TOKENS),
            by_analytics_key: TtlCache::new(cache_for, CACHED_TOKENS),
            by_id: TtlCache::new(cache_for, CACHED_TOKENS),
            routes_by_source: TtlCache::new(cache_for, CACHED_TOKENS),
        }
    }

    fn table(&self) -> &Table {
        self.uow.table()
    }

    /// Registers a partner with its first public key; returns the token (only its hash
    /// is kept). `token` lets an operator re-register a known token (the local demo).
    pub async fn register(
        &self,
        name: &str,
        public_key_pem: &str,
        token: Option<String>,
    ) -> Result<Registration, PartnerError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(PartnerError::EmptyName);
        }
        check_public_key(public_key_pem)?;
        let token = token.unwrap_or_else(|| random_token(TOKEN_PREFIX));
        let now = clock::sortable(clock::now());
        let kid = "key-1".to_owned();
        let partner = Partner {
            id: PartnerId::random(),
            kind: PartnerKind::Integrator,
            name: name.to_owned(),
            token_hash: token_hash(&token),
            keys: vec![PartnerKey {
                kid: kid.clone(),
                public_key_pem: public_key_pem.trim().to_owned(),
                added_at: now.clone(),
            }],
            created_at: now,
            event_route: None,
            analytics_key_hash: None,
            embed_token_version: 0,
            embed_origins: Vec::new(),
            webhook: None,
        };
        self.table().put_new(&partner).await?;
        Ok(Registration {
            partner_id: partner.id,
            partner_token: token,
            kid,
        })
    }

    /// Registers a marketplace: no keys, only a token it presents as a bearer key.
    /// `token` lets an operator re-register a known token (the local demo).
    pub async fn register_marketplace(
        &self,
        name: &str,
        token: Option<String>,
    ) -> Result<Registration, PartnerError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(PartnerError::EmptyName);
        }
        let token = token.unwrap_or_else(|| random_token("mk_"));
        let partner = Partner {
            id: PartnerId::random(),
            kind: PartnerKind::Marketplace,
            name: name.to_owned(),
            token_hash: token_hash(&token),
            keys: Vec::new(),
            created_at: clock::sortable(clock::now()),
            event_route: None,
            analytics_key_hash: None,
            embed_token_version: 0,
            embed_origins: Vec::new(),
            webhook: None,
        };
        self.table().put_new(&partner).await?;
        Ok(Registration {
            partner_id: partner.id,
            partner_token: token,
            kid: String::new(),
        })
    }

    /// Registers (or moves) the partner's EventBridge source and answer bus.
    pub async fn set_event_route(
        &self,
        id: PartnerId,
        source: &str,
        bus_arn: &str,
        accounts: &[AwsAccountId],
    ) -> Result<PartnerRoute, PartnerError> {
        let source = source.trim();
        let bus_arn = bus_arn.trim();
        if source.is_empty()
            || source.len() > 256
            || source.starts_with("aws.")
            || source == crate::events::HUB_EVENT_SOURCE
        {
            return Err(PartnerError::InvalidRoute(format!(
                "'{source}' cannot be a partner's event source"
            )));
        }
        if !bus_arn.starts_with("arn:aws:events:") || !bus_arn.contains(":event-bus/") {
            return Err(PartnerError::InvalidRoute(format!(
                "'{bus_arn}' is not an EventBridge bus ARN"
            )));
        }
        if accounts.is_empty() {
            return Err(PartnerError::InvalidRoute(
                "name at least one AWS account the partner sends events from".into(),
            ));
        }
        self.uow
            .apply(|| self.plan_event_route(id, source, bus_arn, accounts))
            .await
    }

    async fn plan_event_route(
        &self,
        id: PartnerId,
        source: &str,
        bus_arn: &str,
        accounts: &[AwsAccountId],
    ) -> Result<Planned<PartnerRoute>, PartnerError> {
        let mut partner = self
            .get(id)
            .await?
            .ok_or(PartnerError::UnknownPartner(id))?;
        let route = PartnerRoute {
            source: source.to_owned(),
            partner_id: id,
            partner_name: partner.name.clone(),
            bus_arn: bus_arn.to_owned(),
            accounts: accounts.to_vec(),
        };
        let mut tx = Tx::new();
        // A claim that another partner wins meanwhile is seen by the re-plan.
        match self.route_for_source(source).await? {
            None => tx.put_new(&route)?,
            Some(existing) if existing.partner_id == id => tx.put(&route)?,
            Some(_) => return Err(PartnerError::SourceTaken(source.to_owned())),
        };
        if let Some(old) = partner
            .event_route
            .as_ref()
            .filter(|old| old.source != source)
        {
            tx.delete(keys::partner_source(&old.source));
        }
        partner.event_route = Some(EventRoute {
            source: source.to_owned(),
            bus_arn: bus_arn.to_owned(),
            accounts: accounts.to_vec(),
        });
        tx.put(&partner)?;
        Ok(Planned::new(tx, route))
    }

    /// Unbinds the partner's EventBridge side: its source acts for no one any more (its
    /// events are parked as unregistered). Returns the source it had, if any.
    pub async fn remove_event_route(&self, id: PartnerId) -> Result<Option<String>, PartnerError> {
        self.uow
            .apply(|| async {
                let mut partner = self
                    .get(id)
                    .await?
                    .ok_or(PartnerError::UnknownPartner(id))?;
                let mut tx = Tx::new();
                let removed = partner.event_route.take().map(|route| route.source);
                if let Some(source) = &removed {
                    tx.delete(keys::partner_source(source));
                    tx.put(&partner)?;
                }
                Ok(Planned::new(tx, removed))
            })
            .await
    }

    /// The partner whose events carry this `source`; a warm function remembers a
    /// registered source for `cache_for`, as it does partners by token (a changed or
    /// removed route takes effect within that time; unknown sources are always read).
    pub async fn route_for_source(
        &self,
        source: &str,
    ) -> Result<Option<PartnerRoute>, PartnerError> {
        self.routes_by_source
            .get_or_fetch(source.to_owned(), || async {
                Ok(self.table().get(&keys::partner_source(source)).await?)
            })
            .await
    }

    /// Adds a key for rotation; payloads may name it with the JWT header `kid`.
    pub async fn add_key(
        &self,
        id: PartnerId,
        public_key_pem: &str,
    ) -> Result<String, PartnerError> {
        check_public_key(public_key_pem)?;
        let mut partner = self
            .get(id)
            .await?
            .ok_or(PartnerError::UnknownPartner(id))?;
        let kid = format!("key-{}", partner.keys.len() + 1);
        partner.keys.push(PartnerKey {
            kid: kid.clone(),
            public_key_pem: public_key_pem.trim().to_owned(),
            added_at: clock::sortable(clock::now()),
        });
        self.table().put(&partner).await?;
        Ok(kid)
    }

    /// Removes a retired key.
    pub async fn remove_key(&self, id: PartnerId, kid: &str) -> Result<(), PartnerError> {
        let mut partner = self
            .get(id)
            .await?
            .ok_or(PartnerError::UnknownPartner(id))?;
        partner.keys.retain(|k| k.kid != kid);
        self.table().put(&partner).await?;
        Ok(())
    }

    pub async fn get(&self, id: PartnerId) -> Result<Option<Partner>, PartnerError> {
        Ok(self.table().get(&keys::partner(id)).await?)
    }

    /// [`get`](Self::get), then from the process's cache for `cache_for`, for the paths
    /// that only address the partner (its webhook, its bus): a changed route takes
    /// effect within that time, as a changed token does.
    pub async fn get_cached(&self, id: PartnerId) -> Result<Option<Partner>, PartnerError> {
        self.by_id.get_or_fetch(id, || self.get(id)).await
    }

    /// Forgets what this process remembers of a partner by id (a change it made itself).
    pub fn forget(&self, id: PartnerId) {
        self.by_id.remove(&id);
    }

    /// The partner of `kind` a token belongs to; a token of another kind is unknown here.
    pub async fn authenticate_kind(
        &self,
        token: Option<&str>,
        kind: PartnerKind,
    ) -> Result<Partner, PartnerError> {
        let partner = self.authenticate(token).await?;
        if partner.kind == kind {
            Ok(partner)
        } else {
            Err(PartnerError::UnknownToken)
        }
    }

    /// Issues the partner's analytics key (replacing any earlier one, which stops working
    /// at once); only its hash is kept. `key` lets an operator re-issue a known key (the
    /// local demo).
    pub async fn issue_analytics_key(
        &self,
        id: PartnerId,
        key: Option<String>,
    ) -> Result<String, PartnerError> {
        let mut partner = self
            .get(id)
            .await?
            .ok_or(PartnerError::UnknownPartner(id))?;
        let key = key
            .filter(|k| crate::secrets::token_owner(ANALYTICS_KEY_PREFIX, k) == Some(id.as_uuid()))
            .unwrap_or_else(|| crate::secrets::owned_token(ANALYTICS_KEY_PREFIX, id.as_uuid()));
        partner.analytics_key_hash = Some(token_hash(&key));
        self.table().put(&partner).await?;
        Ok(key)
    }

    /// The integrator an analytics key belongs to: one read by the id the key carries,
    /// then the hash compared in constant time; then from the process's cache for
    /// `cache_for`, as partner tokens are (a re-issued key takes effect within it).
    pub async fn authenticate_analytics(&self, key: Option<&str>) -> Result<Partner, PartnerError> {
        let key = key
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(PartnerError::MissingAnalyticsKey)?;
        let id = crate::secrets::token_owner(ANALYTICS_KEY_PREFIX, key)
            .map(PartnerId::from_uuid)
            .ok_or(PartnerError::UnknownAnalyticsKey)?;
        self.by_analytics_key
            .get_or_fetch(token_hash(key), || async {
                Ok::<_, PartnerError>(
                    self.get(id)
                        .await?
                        .filter(|p| p.kind == PartnerKind::Integrator)
                        .filter(|p| {
                            p.analytics_key_hash
                                .as_deref()
                                .is_some_and(|hash| token_matches(key, hash))
                        }),
                )
            })
            .await?
            .ok_or(PartnerError::UnknownAnalyticsKey)
    }

    /// The partner a token belongs to, keys and routes included: one query on GSI1 (which
    /// projects the whole record), compared in constant time; then from the process's
    /// cache for `cache_for`. Unknown tokens are never cached.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Partner, PartnerError> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(PartnerError::MissingToken)?;
        let hash = token_hash(token);
        let query = Query::gsi1(keys::partner_token_gsi1pk(&hash)).page_size(1);
        self.by_token
            .get_or_fetch(hash, || async {
                let found: Vec<Partner> = self.table().query_all(&query).await?;
                Ok::<_, PartnerError>(
                    found
                        .into_iter()
                        .find(|p| token_matches(token, &p.token_hash)),
                )
            })
            .await?
            .ok_or(PartnerError::UnknownToken)
    }
}

fn check_public_key(pem: &str) -> Result<(), PartnerError> {
    jsonwebtoken::DecodingKey::from_rsa_pem(pem.trim().as_bytes())
        .map(|_| ())
        .map_err(|_| PartnerError::InvalidPublicKey)
}
