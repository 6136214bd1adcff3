//! Accounts: a partner's shops, sub-accounts and customers. The signed-payload API
//! provisions shops here; the other contracts reuse the same record.

use serde::{Deserialize, Serialize};

pub use crate::domain::{AccountKind, BillingOwner};
use crate::{
    clock,
    domain::{
        AccountId, AccountStatus, CurrencyCode, Email, ExternalId, Locale, PartnerId, Platform,
        ShopDomain, ShopName, TzOffset,
    },
    events::{AccountProvisioned, EventPayload, HubEvent},
    partners::Partner,
    secrets::{SecretError, SecretSealer, random_hex16, random_token},
    store::{Keys, Planned, Query, Record, StoreError, Tx, TxError, UnitOfWork, keys},
};

/// The pages of the standard integration; each gets a token the shop embeds.
pub const DEFAULT_PAGES: [&str; 6] = ["home", "product", "category", "search", "cart", "checkout"];

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("the shop {0} belongs to another partner")]
    ShopTaken(ShopDomain),
    #[error("this account has no integration credentials")]
    NoCredentials,
    /// No such shop for this partner (another partner's shop is reported the same way).
    #[error("no shop {0} for this partner")]
    UnknownShop(ShopDomain),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Tx(#[from] TxError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub token: String,
    pub name: String,
}

/// The shop a partner registers through the signed-payload API, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopProfile {
    pub domain: ShopDomain,
    pub name: ShopName,
    pub currency_code: CurrencyCode,
    pub contact_email: Email,
    pub timezone_offset: TzOffset,
    pub locale: Locale,
    pub platform: Platform,
}

/// Secrets the hub must present again, sealed with KMS (see `secrets`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedCredentials {
    pub access_token: String,
    pub secret_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub partner_id: PartnerId,
    pub kind: AccountKind,
    pub external_id: ExternalId,
    pub status: AccountStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop: Option<ShopProfile>,
    /// Shops get credentials for the standard integration; other kinds may have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SealedCredentials>,
    /// Who bills this account. Accounts that came through a marketplace are billed by it,
    /// so the hub's own payment and invoice features are off for them.
    #[serde(default)]
    pub billing: BillingOwner,
    #[serde(default)]
    pub pages: Vec<Page>,
    /// Whether the partner has the shop's integrations running (the signed-payload
    /// contract's pause/resume); paused shops' tokens are refused and accrue no usage.
    #[serde(default = "running_by_default")]
    pub running: bool,
    /// When it was paused, most recent last (the usage of a period leaves these out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paused_intervals: Vec<PausedInterval>,
    /// SHA-256 of the shop's `accessToken`, to authenticate its front-end integration
    /// without opening the sealed token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_hash: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn running_by_default() -> bool {
    true
}

/// A time the shop was paused; `to` is `None` while it still is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PausedInterval {
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// The most paused intervals an account keeps (the oldest go first): bounds the item.
pub const MAX_PAUSED_INTERVALS: usize = 200;

impl Record for Account {
    fn keys(&self) -> Keys {
        keys::account(self.id).with_gsi1(
            keys::partner_accounts_gsi1pk(self.partner_id),
            format!("{}#{}", self.created_at, self.id),
        )
    }
}

/// Credentials in the clear, for the one response that shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_token: String,
    pub secret_key: String,
}

/// The outcome of provisioning a shop.
#[derive(Debug, Clone)]
pub struct ProvisionedShop {
    pub account: Account,
    pub credentials: Credentials,
    /// True when this call created the shop (201), false when it existed (200).
    pub created: bool,
}

#[derive(Clone, Debug)]
pub struct Accounts {
    uow: UnitOfWork,
    sealer: SecretSealer,
}

impl Accounts {
    pub fn new(uow: UnitOfWork, sealer: SecretSealer) -> Self {
        Self { uow, sealer }
    }

    fn table(&self) -> &crate::store::Table {
        self.uow.table()
    }

    /// The sealer of the hub's secrets (KMS).
    pub fn sealer(&self) -> &SecretSealer {
        &self.sealer
    }

    pub async fn get(&self, id: AccountId) -> Result<Option<Account>, AccountError> {
        Ok(self.table().get(&keys::account(id)).await?)
    }

    /// A partner's accounts, oldest first.
    pub async fn list_for_partner(&self, partner: PartnerId) -> Result<Vec<Account>, AccountError> {
        Ok(self
            .table()
            .query_all(&Query::gsi1(keys::partner_accounts_gsi1pk(partner)))
            .await?)
    }

    /// Creates the shop's account, or returns it when this partner already has it.
    /// The account id is derived from the host, so the conditional put is the
    /// cross-partner uniqueness check; account and `account.provisioned` event are one
    /// transaction.
    pub async fn provision_shop(
        &self,
        partner: &Partner,
        profile: ShopProfile,
    ) -> Result<ProvisionedShop, AccountError> {
        self.uow.apply(|| self.plan_shop(partner, &profile)).await
    }

    async fn plan_shop(
        &self,
        partner: &Partner,
        profile: &ShopProfile,
    ) -> Result<Planned<ProvisionedShop>, AccountError> {
        let id = AccountId::for_shop(&profile.domain);
        // A cold function makes its data key while it reads, so a new shop's secrets
        // are sealed without a KMS round trip of their own.
        let (existing, _) = tokio::try_join!(self.get(id), async {
            Ok::<_, AccountError>(self.sealer.prepare().await?)
        })?;
        if let Some(existing) = existing {
            return Ok(Planned::nothing(
                self.existing_shop(partner, existing).await?,
            ));
        }
        let credentials = Credentials {
            access_token: random_token("at_"),
            secret_key: random_token("sk_"),
        };
        let record = id.to_string();
        let (access_token, secret_key) = tokio::try_join!(
            self.sealer
                .seal(&credentials.access_token, &record, "accessToken"),
            self.sealer
                .seal(&credentials.secret_key, &record, "secretKey"),
        )?;
        let now = clock::sortable(clock::now());
        let external_id = ExternalId::parse(profile.domain.as_str())
            .map_err(|e| StoreError::Dynamo(format!("a shop host is an external id: {e}")))?;
        let account = Account {
            id,
            partner_id: partner.id,
            kind: AccountKind::Shop,
            external_id,
            status: AccountStatus::Active,
            pages: DEFAULT_PAGES
                .iter()
                .map(|name| Page {
                    token: random_hex16(),
                    name: (*name).to_owned(),
                })
                .collect(),
            shop: Some(profile.clone()),
            billing: BillingOwner::Hub,
            credentials: Some(SealedCredentials {
                access_token,
                secret_key,
            }),
            running: true,
            paused_intervals: Vec::new(),
            access_token_hash: Some(crate::secrets::token_hash(&credentials.access_token)),
            created_at: now.clone(),
            updated_at: now,
        };
        let event = HubEvent::new(EventPayload::AccountProvisioned(AccountProvisioned {
            kind: AccountKind::Shop,
            external_id: account.external_id.clone(),
            status: account.status,
            name: profile.name.as_str().to_owned(),
            shop: Some(profile.domain.clone()),
            platform: Some(profile.platform),
        }))
        .for_account(id, partner.id);
        let mut tx = Tx::new();
        // A lost condition means another call created it first: the re-plan answers
        // as for an existing shop.
        tx.put_new(&account)?.event(event);
        Ok(Planned::new(
            tx,
            ProvisionedShop {
                account,
                credentials,
                created: true,
            },
        ))
    }

    async fn existing_shop(
        &self,
        partner: &Partner,
        account: Account,
    ) -> Result<ProvisionedShop, AccountError> {
        if account.partner_id != partner.id {
            let domain = match account.shop {
                Some(shop) => shop.domain,
                None => ShopDomain::parse(account.external_id.as_str())
                    .map_err(|e| StoreError::Dynamo(format!("stored shop host: {e}")))?,
            };
            return Err(AccountError::ShopTaken(domain));
        }
        let credentials = self.open_credentials(&account).await?;
        Ok(ProvisionedShop {
            account,
            credentials,
            created: false,
        })
    }

    /// Pauses or resumes the partner's shop; the same state again changes nothing.
    pub async fn set_running(
        &self,
        partner: PartnerId,
        domain: &ShopDomain,
        running: bool,
    ) -> Result<Account, AccountError> {
        self.uow
            .apply(|| async {
                let mut account = self.shop_of(partner, domain).await?;
                if account.running == running {
                    return Ok(Planned::nothing(account));
                }
                let now = clock::sortable(clock::now());
                if running {
                    if let Some(open) = account
                        .paused_intervals
                        .last_mut()
                        .filter(|i| i.to.is_none())
                    {
                        open.to = Some(now.clone());
                    }
                } else {
                    account.paused_intervals.push(PausedInterval {
                        from: now.clone(),
                        to: None,
                    });
                    let excess = account
                        .paused_intervals
                        .len()
                        .saturating_sub(MAX_PAUSED_INTERVALS);
                    account.paused_intervals.drain(..excess);
                }
                account.running = running;
                account.updated_at = now;
                let change = crate::events::ShopRunning {
                    shop: domain.clone(),
                    running,
                };
                let payload = if running {
                    EventPayload::ShopResumed(change)
                } else {
                    EventPayload::ShopPaused(change)
                };
                let mut tx = Tx::new();
                tx.put(&account)?
                    .event(HubEvent::new(payload).for_account(account.id, partner));
                Ok::<_, AccountError>(Planned::new(tx, account))
            })
            .await
    }

    /// The partner's shop at this host; another partner's shop is unknown here.
    pub async fn shop_of(
        &self,
        partner: PartnerId,
        domain: &ShopDomain,
    ) -> Result<Account, AccountError> {
        self.get(AccountId::for_shop(domain))
            .await?
            .filter(|a| a.partner_id == partner && a.kind == AccountKind::Shop)
            .ok_or_else(|| AccountError::UnknownShop(domain.clone()))
    }

    pub async fn open_credentials(&self, account: &Account) -> Result<Credentials, AccountError> {
        let record = account.id.to_string();
        let sealed = account
            .credentials
            .as_ref()
            .ok_or(AccountError::NoCredentials)?;
        let (access_token, secret_key) = tokio::try_join!(
            self.sealer
                .open(&sealed.access_token, &record, "accessToken"),
            self.sealer.open(&sealed.secret_key, &record, "secretKey"),
        )?;
        Ok(Credentials {
            access_token,
            secret_key,
        })
    }
}
