//! The embed API's domain (contract `embed-api.txt`): a partner provisions its
//! end-customers as **sub-accounts** (the same account records as shops, kind
//! `sub_account`, external id unique per partner), gets a JWT per tenant, and adds data
//! **connections** on their behalf, with API keys or through an OAuth2 flow.
//!
//! Sub-accounts are numbered (the contract shows integer ids) from an atomic counter;
//! the account id is derived from partner and number, so a number of another partner
//! finds nothing. The external id is claimed by its own item (`SUBACCOUNT_EXT#`), written
//! with the sub-account in one transaction: the conditional put is the uniqueness check.
//! The claim also holds a copy of the sub-account, written in every transaction that
//! changes it, so a request by external id reads one item.

pub mod catalog;
pub mod connections;
pub mod oauth;
pub mod tokens;

use serde::{Deserialize, Serialize};

pub use tokens::{EmbedClaims, EmbedKeys, IssuedToken, Subject, TokenError};

use crate::{
    accounts::Account,
    clock,
    domain::{
        AccountId, AccountKind, AccountStatus, BillingOwner, Email, ExternalId, Locale, ParseError,
        PartnerId,
    },
    events::{AccountDeleted, AccountProvisioned, EventPayload, HubEvent},
    outbound::OutboundError,
    partners::Partner,
    secrets::{SecretError, SecretSealer},
    store::{Keys, Planned, Query, Record, StoreError, Table, Tx, TxError, UnitOfWork, keys},
};

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{field} {message}")]
    Invalid { field: String, message: String },
    #[error("{0} is required")]
    Missing(String),
    #[error("no such sub-account")]
    UnknownSubAccount,
    #[error("no such connection")]
    UnknownConnection,
    #[error("the external id is already sub-account {number}'s, with other details")]
    ExternalIdTaken { number: u64 },
    /// The token is missing, malformed, expired, revoked or not for this route.
    #[error("{0}")]
    Unauthorized(String),
    #[error("no OAuth2 client is configured for connector {0} (hub-admin set-oauth-client)")]
    NoOAuthClient(u64),
    /// A callback whose `state` is unknown, used or expired.
    #[error("{0}")]
    OAuthFlow(String),
    #[error("no such partner")]
    UnknownPartner,
    #[error("the origin {0} is registered to another partner")]
    OriginTaken(String),
    #[error("PUBLIC_BASE_URL is not set: where does the OAuth2 provider send the browser back?")]
    NoPublicBaseUrl,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tx(#[from] TxError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Outbound(#[from] OutboundError),
}

impl EmbedError {
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            message: message.to_string(),
        }
    }
}

/// A sub-account's own details (all optional but the external id; each checked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubAccountProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Locale>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
}

/// Changes to a profile: `Some(None)` clears a field, `None` keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChange {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub email: Option<Option<Email>>,
    pub language: Option<Option<Locale>>,
    pub company_name: Option<Option<String>>,
}

impl ProfileChange {
    /// The profile a create writes: every field as given.
    pub fn into_profile(self) -> SubAccountProfile {
        SubAccountProfile {
            first_name: self.first_name.flatten(),
            last_name: self.last_name.flatten(),
            email: self.email.flatten(),
            language: self.language.flatten(),
            company_name: self.company_name.flatten(),
        }
    }

    fn apply(self, profile: &mut SubAccountProfile) {
        fn set<T>(slot: &mut Option<T>, change: Option<Option<T>>) {
            if let Some(value) = change {
                *slot = value;
            }
        }
        set(&mut profile.first_name, self.first_name);
        set(&mut profile.last_name, self.last_name);
        set(&mut profile.email, self.email);
        set(&mut profile.language, self.language);
        set(&mut profile.company_name, self.company_name);
    }
}

/// An end-customer's account, as the embed API sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubAccount {
    pub number: u64,
    pub account_id: AccountId,
    pub partner_id: PartnerId,
    pub external_id: ExternalId,
    pub profile: SubAccountProfile,
    /// Every tenant token carries the version it was issued at; bumping revokes them.
    pub token_version: u64,
    /// The id of its last connection (less 10,000): connection ids are the
    /// sub-account's own. `None` for sub-accounts from before, whose connections take
    /// ids from the global counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_connection: Option<u64>,
    pub revision: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl Record for SubAccount {
    fn keys(&self) -> Keys {
        keys::sub_account(self.account_id).with_gsi1(
            keys::partner_sub_accounts_gsi1pk(self.partner_id),
            keys::sub_account_gsi1sk(self.number),
        )
    }
}

impl crate::store::Revisioned for SubAccount {
    fn revision(&self) -> u64 {
        self.revision
    }
    fn set_revision(&mut self, revision: u64) {
        self.revision = revision;
    }
    fn set_updated_at(&mut self, at: String) {
        self.updated_at = at;
    }
}

/// A partner's external id, claimed by one sub-account.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ExternalIdClaim {
    partner_id: PartnerId,
    external_id: ExternalId,
    number: u64,
    account_id: AccountId,
    /// The sub-account as of its last change (claims written before there was a copy
    /// have none: the sub-account is read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub_account: Option<SubAccount>,
}

impl ExternalIdClaim {
    fn of(sub: &SubAccount) -> Self {
        Self {
            partner_id: sub.partner_id,
            external_id: sub.external_id.clone(),
            number: sub.number,
            account_id: sub.account_id,
            sub_account: Some(sub.clone()),
        }
    }
}

impl Record for ExternalIdClaim {
    fn keys(&self) -> Keys {
        keys::sub_account_external(self.partner_id, self.external_id.as_str())
    }
}

/// What is kept of a deleted sub-account: no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubAccountTombstone {
    pub account_id: AccountId,
    pub partner_id: PartnerId,
    pub number: u64,
    pub external_id: ExternalId,
    pub deleted_at: String,
    #[serde(default)]
    pub items_deleted: usize,
}

impl Record for SubAccountTombstone {
    fn keys(&self) -> Keys {
        keys::tombstone(self.account_id)
    }
}

/// Which browser origin belongs to which partner (CORS, preflights carry no token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginOwner {
    pub origin: String,
    pub partner_id: PartnerId,
}

impl Record for OriginOwner {
    fn keys(&self) -> Keys {
        keys::embed_origin(&self.origin)
    }
}

/// Who called, once the token checked out.
#[derive(Debug, Clone)]
pub enum Caller {
    Partner(Box<Partner>),
    Tenant(Box<SubAccount>),
}

impl Caller {
    pub fn partner_id(&self) -> PartnerId {
        match self {
            Caller::Partner(p) => p.id,
            Caller::Tenant(s) => s.partner_id,
        }
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, lowercase, no path.
pub fn parse_origin(value: &str) -> Result<String, ParseError> {
    let url = url::Url::parse(value.trim())
        .map_err(|_| ParseError::new("must be an origin such as https://acme.com"))?;
    let plain = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() || !plain {
        return Err(ParseError::new(
            "must be an origin such as https://acme.com (scheme and host, no path)",
        ));
    }
    if url.scheme() == "http" && !matches!(url.host_str(), Some("localhost") | Some("127.0.0.1")) {
        return Err(ParseError::new("must be https (http only for localhost)"));
    }
    Ok(url.origin().ascii_serialization())
}

/// A page of sub-accounts and the cursor of the next one.
pub struct SubAccountPage {
    pub items: Vec<SubAccount>,
    pub next: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Embed {
    uow: UnitOfWork,
    sealer: SecretSealer,
    pub keys: EmbedKeys,
    /// A tenant token's lifetime unless `expire=false` (`EMBED_TOKEN_LIFETIME_SECONDS`).
    pub tenant_token_lifetime: std::time::Duration,
    public_base_url: Option<String>,
    /// Registered origins' owners, for `PARTNER_CACHE_SECONDS` (CORS asks per request).
    origin_owners: crate::cache::TtlCache<String, PartnerId>,
    /// Partners behind partner tokens: the hub's partners, whose cache by id this shares.
    partners: crate::partners::Partners,
    /// Connectors' OAuth2 clients, likewise ([`Embed::oauth_client`]).
    oauth_clients: crate::cache::TtlCache<u64, oauth::OAuthClient>,
}

impl Embed {
    pub fn new(
        uow: UnitOfWork,
        sealer: SecretSealer,
        keys: EmbedKeys,
        partners: crate::partners::Partners,
        config: &crate::Config,
    ) -> Self {
        Self {
            uow,
            sealer,
            keys,
            tenant_token_lifetime: config.embed_token_lifetime,
            public_base_url: config.public_base_url.clone(),
            origin_owners: crate::cache::TtlCache::new(config.partner_cache, 1000),
            partners,
            oauth_clients: crate::cache::TtlCache::new(config.partner_cache, 100),
        }
    }

    fn table(&self) -> &Table {
        self.uow.table()
    }

    // ------------------------------------------------------------- sub-accounts

    pub async fn sub_account(
        &self,
        partner: PartnerId,
        number: u64,
    ) -> Result<Option<SubAccount>, EmbedError> {
        Ok(self
            .table()
            .get::<SubAccount>(&keys::sub_account(AccountId::for_sub_account(
                partner, number,
            )))
            .await?
            .filter(|s| s.partner_id == partner))
    }

    pub async fn sub_account_by_external(
        &self,
        partner: PartnerId,
        external_id: &ExternalId,
    ) -> Result<Option<SubAccount>, EmbedError> {
        let claim: Option<ExternalIdClaim> = self
            .table()
            .get(&keys::sub_account_external(partner, external_id.as_str()))
            .await?;
        match claim {
            Some(ExternalIdClaim {
                sub_account: Some(sub),
                ..
            }) => Ok(Some(sub).filter(|s| s.partner_id == partner)),
            Some(claim) => self.sub_account(partner, claim.number).await,
            None => Ok(None),
        }
    }

    /// Creates a sub-account; the same external id again answers the existing one when
    /// the details are the same (`false`: not created) and `ExternalIdTaken` otherwise.
    pub async fn create_sub_account(
        &self,
        partner: PartnerId,
        external_id: ExternalId,
        profile: SubAccountProfile,
    ) -> Result<(SubAccount, bool), EmbedError> {
        // No read first: the claim's condition tells an external id already taken (a
        // repeat costs a number from the counter, which may have gaps).
        let number = self.table().next_id("SUBACCOUNT").await?;
        let account_id = AccountId::for_sub_account(partner, number);
        let now = clock::sortable(clock::now());
        let account = Account {
            id: account_id,
            partner_id: partner,
            kind: AccountKind::SubAccount,
            external_id: external_id.clone(),
            status: AccountStatus::Active,
            shop: None,
            credentials: None,
            billing: BillingOwner::Hub,
            pages: Vec::new(),
            running: true,
            paused_intervals: Vec::new(),
            access_token_hash: None,
            created_at: now.clone(),
            updated_at: now.clone(),
        };
        let sub = SubAccount {
            number,
            account_id,
            partner_id: partner,
            external_id: external_id.clone(),
            profile: profile.clone(),
            token_version: 0,
            last_connection: Some(0),
            revision: 1,
            created_at: now.clone(),
            updated_at: now,
        };
        let claim = ExternalIdClaim::of(&sub);
        let event = HubEvent::new(EventPayload::AccountProvisioned(AccountProvisioned {
            kind: AccountKind::SubAccount,
            external_id: external_id.clone(),
            status: AccountStatus::Active,
            name: profile
                .company_name
                .clone()
                .unwrap_or_else(|| external_id.as_str().to_owned()),
            shop: None,
            platform: None,
        }))
        .for_account(account_id, partner);
        let mut tx = Tx::new();
        tx.put_new(&account)?
            .put_new(&sub)?
            .put_new(&claim)?
            .event(event);
        if self.uow.commit_once(tx).await? {
            return Ok((sub, true));
        }
        // Another request claimed the external id first: answer as for an existing one.
        match self.sub_account_by_external(partner, &external_id).await? {
            Some(existing) => same_or_taken(existing, &profile),
            None => Err(TxError::Conflict.into()),
        }
    }

    /// A page of the partner's sub-accounts by number, after `after`.
    pub async fn list_sub_accounts(
        &self,
        partner: PartnerId,
        limit: usize,
        after: Option<u64>,
    ) -> Result<SubAccountPage, EmbedError> {
        let mut query = Query::gsi1(keys::partner_sub_accounts_gsi1pk(partner));
        if let Some(after) = after {
            query = query.sort_after(keys::sub_account_gsi1sk(after));
        }
        let (items, more): (Vec<SubAccount>, bool) =
            self.table().query_page(&query, limit, None).await?;
        let next = if more {
            items.last().map(|s| s.number)
        } else {
            None
        };
        Ok(SubAccountPage { items, next })
    }

    /// Changes a sub-account's details (the external id stays), planned from the
    /// sub-account as the caller read it.
    pub async fn update_sub_account(
        &self,
        sub: &SubAccount,
        change: ProfileChange,
    ) -> Result<SubAccount, EmbedError> {
        self.update(sub.partner_id, sub.number, Some(sub.clone()), |sub| {
            let before = sub.profile.clone();
            change.clone().apply(&mut sub.profile);
            sub.profile != before
        })
        .await
    }

    /// Revokes every tenant token of the sub-account issued so far.
    pub async fn revoke_tenant_tokens(
        &self,
        partner: PartnerId,
        number: u64,
    ) -> Result<SubAccount, EmbedError> {
        self.update(partner, number, None, |sub| {
            sub.token_version += 1;
            true
        })
        .await
    }

    /// A new revision of the sub-account, with its claim's copy.
    async fn update(
        &self,
        partner: PartnerId,
        number: u64,
        read_already: Option<SubAccount>,
        change: impl Fn(&mut SubAccount) -> bool,
    ) -> Result<SubAccount, EmbedError> {
        self.uow
            .update_with(
                read_already,
                || async {
                    self.sub_account(partner, number)
                        .await?
                        .ok_or(EmbedError::UnknownSubAccount)
                },
                |sub| Ok(change(sub)),
                |next, tx| {
                    tx.put(&ExternalIdClaim::of(next))?;
                    Ok(())
                },
            )
            .await
    }

    /// Deletes a sub-account: its record, tokens (at once: the record they are checked
    /// against is gone), external id and account in one transaction with a tombstone and
    /// `account.deleted`; the rest of its partition (connections with their sealed
    /// credentials, logs, timeline) is purged by the consumer of that event within
    /// seconds (`account-timeline`, retried, its failures parked). A repeated delete
    /// answers the tombstone again.
    pub async fn delete_sub_account(
        &self,
        partner: PartnerId,
        number: u64,
        read_already: Option<SubAccount>,
    ) -> Result<SubAccountTombstone, EmbedError> {
        let account_id = AccountId::for_sub_account(partner, number);
        let table = self.table();
        let tombstone_keys = keys::tombstone(account_id);
        // The sub-account (unless the caller read it) and its tombstone (a repeated
        // delete) are read together.
        let (sub, earlier) = match read_already {
            Some(sub) => (Some(sub), None),
            None => tokio::try_join!(self.sub_account(partner, number), async {
                Ok(table.get::<SubAccountTombstone>(&tombstone_keys).await?)
            })?,
        };
        let Some(sub) = sub else {
            return earlier
                .filter(|t| t.partner_id == partner && t.number == number)
                .ok_or(EmbedError::UnknownSubAccount);
        };
        let tombstone = SubAccountTombstone {
            account_id,
            partner_id: partner,
            number,
            external_id: sub.external_id.clone(),
            deleted_at: clock::sortable(clock::now()),
            items_deleted: 0,
        };
        let event = HubEvent::new(EventPayload::AccountDeleted(AccountDeleted {
            customer_id: sub.external_id.to_string(),
            items_deleted: 0,
        }))
        .for_account(account_id, partner);
        self.uow
            .apply(|| async {
                let mut tx = Tx::new();
                tx.delete(keys::sub_account(account_id))
                    .delete(keys::account(account_id))
                    .delete(keys::sub_account_external(
                        partner,
                        sub.external_id.as_str(),
                    ))
                    .put(&tombstone)?
                    .event(event.clone());
                Ok::<_, EmbedError>(Planned::new(tx, ()))
            })
            .await?;
        Ok(tombstone)
    }

    // ------------------------------------------------------------------ tokens

    /// A tenant token for the sub-account: `expire = false` never expires.
    pub async fn issue_tenant_token(
        &self,
        sub: &SubAccount,
        expire: bool,
    ) -> Result<IssuedToken, EmbedError> {
        let subject = Subject::SubAccount {
            partner: sub.partner_id,
            number: sub.number,
        };
        let lifetime = expire.then_some(self.tenant_token_lifetime);
        Ok(self
            .keys
            .issue(subject, sub.token_version, lifetime, clock::now())
            .await?)
    }

    /// The partner's non-expiring embed token (`hub-admin embed-token`).
    pub async fn issue_partner_token(&self, partner: PartnerId) -> Result<IssuedToken, EmbedError> {
        let partner = self.partner(partner).await?;
        Ok(self
            .keys
            .issue(
                Subject::Partner(partner.id),
                partner.embed_token_version,
                None,
                clock::now(),
            )
            .await?)
    }

    /// Revokes every embed token of the partner issued so far: at once in this process,
    /// within `PARTNER_CACHE_SECONDS` in warm functions elsewhere.
    pub async fn revoke_partner_tokens(&self, partner: PartnerId) -> Result<u64, EmbedError> {
        let mut record = self.partner(partner).await?;
        record.embed_token_version += 1;
        self.table().put(&record).await?;
        self.partners.forget(partner);
        Ok(record.embed_token_version)
    }

    /// A connector's OAuth2 client, from the process's cache for `PARTNER_CACHE_SECONDS`
    /// (a client an operator registers anew takes effect within that time).
    pub(crate) async fn oauth_client(
        &self,
        servertype: u64,
    ) -> Result<oauth::OAuthClient, EmbedError> {
        self.oauth_clients
            .get_or_fetch(servertype, || async {
                oauth::read_client(self.table(), servertype).await.map(Some)
            })
            .await?
            .ok_or(EmbedError::NoOAuthClient(servertype))
    }

    /// The partner a partner token speaks for, from the process's partner cache for
    /// `PARTNER_CACHE_SECONDS` (as partner tokens are): a revoked partner token stops
    /// working within that time. Tenant tokens are always checked against their record:
    /// partners revoke those through the API and expect it at once.
    async fn partner_subject(&self, id: PartnerId) -> Result<Option<Partner>, EmbedError> {
        self.partners.get_cached(id).await.map_err(|e| match e {
            crate::partners::PartnerError::Store(e) => EmbedError::Store(e),
            other => EmbedError::Store(StoreError::Dynamo(other.to_string())),
        })
    }

    async fn partner(&self, id: PartnerId) -> Result<Partner, EmbedError> {
        self.table()
            .get::<Partner>(&keys::partner(id))
            .await?
            .ok_or(EmbedError::UnknownPartner)
    }

    /// Who a token speaks for: its signature, expiry and audience checked locally, then
    /// its subject read (one `GetItem`) to check the token version.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, EmbedError> {
        let claims = self.verify_token(token).await?;
        self.caller_of(&claims).await
    }

    /// A token's claims, checked without a read: the hub's signature, expiry, audience.
    pub async fn verify_token(&self, token: &str) -> Result<EmbedClaims, EmbedError> {
        self.keys.verify(token).await.map_err(|e| match e {
            TokenError::Invalid(why) => EmbedError::Unauthorized(why),
            other => other.into(),
        })
    }

    /// Who verified claims speak for, once their subject's record says the token still
    /// holds (its version): one read, or none for a partner known to the process.
    pub async fn caller_of(&self, claims: &EmbedClaims) -> Result<Caller, EmbedError> {
        let revoked = || EmbedError::Unauthorized("the token was revoked".into());
        match claims.subject()? {
            Subject::Partner(id) => {
                let partner = self.partner_subject(id).await?.ok_or_else(revoked)?;
                if partner.embed_token_version != claims.ver {
                    return Err(revoked());
                }
                Ok(Caller::Partner(Box::new(partner)))
            }
            Subject::SubAccount { partner, number } => {
                let sub = self
                    .sub_account(partner, number)
                    .await?
                    .ok_or_else(revoked)?;
                if sub.token_version != claims.ver {
                    return Err(revoked());
                }
                Ok(Caller::Tenant(Box::new(sub)))
            }
        }
    }

    // ----------------------------------------------------------------- origins

    /// Registers a browser origin for the partner (`hub-admin embed-origin`).
    pub async fn add_origin(&self, partner: PartnerId, origin: &str) -> Result<String, EmbedError> {
        let origin = parse_origin(origin).map_err(|e| EmbedError::invalid("origin", e))?;
        if let Some(owner) = self.origin_owner(&origin).await?
            && owner != partner
        {
            return Err(EmbedError::OriginTaken(origin));
        }
        let mut record = self.partner(partner).await?;
        if !record.embed_origins.contains(&origin) {
            record.embed_origins.push(origin.clone());
        }
        let owner = OriginOwner {
            origin: origin.clone(),
            partner_id: partner,
        };
        let mut tx = Tx::new();
        tx.put(&record)?.put(&owner)?;
        self.uow.commit_once(tx).await?;
        Ok(origin)
    }

    pub async fn remove_origin(&self, partner: PartnerId, origin: &str) -> Result<(), EmbedError> {
        let origin = parse_origin(origin).map_err(|e| EmbedError::invalid("origin", e))?;
        let mut record = self.partner(partner).await?;
        record.embed_origins.retain(|o| o != &origin);
        let mut tx = Tx::new();
        tx.put(&record)?;
        if self.origin_owner(&origin).await? == Some(partner) {
            tx.delete(keys::embed_origin(&origin));
        }
        self.uow.commit_once(tx).await?;
        Ok(())
    }

    /// The partner a browser origin is registered to.
    /// The partner a request's `Origin` is registered to, as CORS needs it: a warm
    /// function remembers registered origins for `PARTNER_CACHE_SECONDS` (a removed
    /// origin stops being answered within that time; unknown ones are always read).
    pub async fn request_origin_owner(
        &self,
        origin: &str,
    ) -> Result<Option<PartnerId>, EmbedError> {
        self.origin_owners
            .get_or_fetch(origin.to_owned(), || self.origin_owner(origin))
            .await
    }

    pub async fn origin_owner(&self, origin: &str) -> Result<Option<PartnerId>, EmbedError> {
        let Ok(origin) = parse_origin(origin) else {
            return Ok(None);
        };
        Ok(self
            .table()
            .get::<OriginOwner>(&keys::embed_origin(&origin))
            .await?
            .map(|o| o.partner_id))
    }

    pub fn sealer(&self) -> &SecretSealer {
        &self.sealer
    }

    pub fn uow(&self) -> &UnitOfWork {
        &self.uow
    }

    /// Where the OAuth2 provider sends the end-customer's browser back: under
    /// `PUBLIC_BASE_URL`, else under the host the request came to. (The template cannot
    /// give this function its own API's URL: the API refers to the function, so the
    /// function referring to the API is a circular dependency CloudFormation refuses;
    /// behind API Gateway the `Host` is the API's own domain, or routing would fail.)
    pub fn oauth_redirect_uri(&self, request_host: Option<&str>) -> Result<String, EmbedError> {
        let host_base = request_host
            .filter(|h| {
                !h.is_empty()
                    && h.len() <= 253
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
            })
            .map(|h| format!("https://{h}"));
        self.public_base_url
            .clone()
            .or(host_base)
            .map(|base| format!("{}{}", base.trim_end_matches('/'), oauth::CALLBACK_PATH))
            .ok_or(EmbedError::NoPublicBaseUrl)
    }
}

fn same_or_taken(
    existing: SubAccount,
    profile: &SubAccountProfile,
) -> Result<(SubAccount, bool), EmbedError> {
    if &existing.profile == profile {
        Ok((existing, false))
    } else {
        Err(EmbedError::ExternalIdTaken {
            number: existing.number,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_and_host() {
        assert_eq!(
            parse_origin("https://acme.com").unwrap(),
            "https://acme.com"
        );
        assert_eq!(
            parse_origin("https://ACME.com/").unwrap(),
            "https://acme.com"
        );
        assert_eq!(
            parse_origin("https://app.acme.com:8443").unwrap(),
            "https://app.acme.com:8443"
        );
        assert_eq!(
            parse_origin("http://localhost:5173").unwrap(),
            "http://localhost:5173"
        );
        for bad in [
            "acme.com",
            "http://acme.com",
            "https://acme.com/app",
            "ftp://acme.com",
            "",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_profile_change_keeps_what_it_does_not_name() {
        let mut profile = SubAccountProfile {
            first_name: Some("John".into()),
            company_name: Some("Wood".into()),
            ..Default::default()
        };
        ProfileChange {
            first_name: Some(Some("Jane".into())),
            company_name: Some(None),
            ..Default::default()
        }
        .apply(&mut profile);
        assert_eq!(profile.first_name.as_deref(), Some("Jane"));
        assert_eq!(profile.company_name, None);
    }
}
