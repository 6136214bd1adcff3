//! The admin page's users and sessions (signed-payload contract, step 4: SSO).
//!
//! - A user is unique by partner and email: a link from partner P signs in only P's user
//!   of that email, and a session shows only that user's shops, all P's.
//! - An SSO link is single use: its hash is recorded (until it expires) in the same
//!   transaction that signs the user in, so a replay is refused and signs no one in.
//! - Sessions are random tokens stored only as hashes, with an expiry (TTL).
//! - A new user gets a confirmation token (for the welcome email's set-password link).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    accounts::{Account, AccountKind},
    clock,
    domain::{AccountId, Email, PartnerId},
    secrets::{owned_token, token_hash, token_owner},
    store::{Keys, Planned, Record, StoreError, Tx, TxError, UnitOfWork, keys},
};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("this sign-in link was already used")]
    LinkUsed,
    #[error("the link names a shop that is not the partner's")]
    UnknownShop,
    #[error("this confirmation link is not valid (any more)")]
    UnknownConfirmation,
    #[error("the email or password is not right")]
    BadLogin,
    #[error("the password could not be hashed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tx(#[from] TxError),
}

/// Prefixes of the tokens of sessions and of the welcome email's links.
const SESSION_PREFIX: &str = "ses_";
const CONFIRM_PREFIX: &str = "cf_";

/// How long a session lasts.
pub const SESSION_SECONDS: i64 = 8 * 3600;
/// How long the welcome email's confirmation link works.
pub const CONFIRM_SECONDS: i64 = 7 * 86_400;

/// An admin user: one per partner and email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminUser {
    pub id: Uuid,
    pub partner_id: PartnerId,
    pub email: Email,
    pub first_name: String,
    pub last_name: String,
    /// The shops this user may see (all the partner's).
    pub shops: Vec<AccountId>,
    pub created_at: String,
    /// Argon2id (PHC string), once the user confirmed the account and set a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

/// GSI1 key of users by email (any partner's): sign-in with a password looks here.
fn email_key(email: &Email) -> String {
    format!("ADMIN_EMAIL#{}", email.as_str().to_lowercase())
}

impl AdminUser {
    /// The user id: derived from the partner and the lowercased email, so the
    /// conditional put is the uniqueness check.
    pub fn id_for(partner: PartnerId, email: &Email) -> Uuid {
        Uuid::new_v5(
            &Uuid::NAMESPACE_URL,
            format!("admin-user:{partner}:{}", email.as_str().to_lowercase()).as_bytes(),
        )
    }
}

impl Record for AdminUser {
    fn keys(&self) -> Keys {
        keys::admin_user(self.id).with_gsi1(email_key(&self.email), "ADMIN_USER")
    }
}

/// A user's access to a shop, in the shop's partition: the shop's `seats` are counted
/// from these (one `Query`), and they go with the shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    pub account_id: AccountId,
    pub user_id: Uuid,
    pub granted_at: String,
}

impl Record for Seat {
    fn keys(&self) -> Keys {
        keys::seat(self.account_id, self.user_id)
    }
}

/// A used SSO link (by the hash of its payload), kept until it would have expired.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UsedLink {
    link_hash: String,
    used_at: String,
    expires_at: i64,
}

impl Record for UsedLink {
    fn keys(&self) -> Keys {
        keys::used_sso_link(&self.link_hash)
    }
}

/// A signed-in session (by the hash of its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub token_hash: String,
    pub user_id: Uuid,
    pub partner_id: PartnerId,
    /// Double-submit token for the page's forms.
    pub csrf: String,
    pub expires_at: i64,
}

impl Record for Session {
    fn keys(&self) -> Keys {
        keys::admin_session(&self.token_hash)
    }
}

/// A confirmation token of the welcome email (by its hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ConfirmToken {
    token_hash: String,
    user_id: Uuid,
    expires_at: i64,
}

impl Record for ConfirmToken {
    fn keys(&self) -> Keys {
        keys::admin_confirm(&self.token_hash)
    }
}

/// Who an SSO link signs in.
#[derive(Debug, Clone)]
pub struct SsoRequest {
    pub partner: PartnerId,
    pub shop: AccountId,
    pub email: Email,
    pub first_name: String,
    pub last_name: String,
    /// The link's payload (its hash makes it single use) and when it expires.
    pub link: String,
    pub link_expires_at: i64,
}

/// The outcome of an SSO link.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: AdminUser,
    /// The session token, shown once (as the cookie).
    pub session_token: String,
    pub session: Session,
    /// For a new user: the token of the welcome email's confirmation link.
    pub confirm_token: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Admin {
    uow: UnitOfWork,
}

impl Admin {
    pub fn new(uow: UnitOfWork) -> Self {
        Self { uow }
    }

    /// Signs the link's user in: creates the user if absent, grants the shop if missing,
    /// records the link as used, starts a session. A used link is refused.
    pub async fn sign_in(
        &self,
        request: &SsoRequest,
        now: OffsetDateTime,
    ) -> Result<SignedIn, AdminError> {
        let link_hash = token_hash(&request.link);
        let id = AdminUser::id_for(request.partner, &request.email);
        let (session_token, session) = Self::new_session(id, request.partner, now);
        let confirm = owned_token(CONFIRM_PREFIX, id);
        let at = now.unix_timestamp();
        let table = self.uow.table();
        self.uow
            .apply(|| async {
                // The link, the shop and the user are read together (one round trip).
                let (link_keys, shop_keys, user_keys) = (
                    keys::used_sso_link(&link_hash),
                    keys::account(request.shop),
                    keys::admin_user(id),
                );
                let (used, shop, existing) = tokio::try_join!(
                    table.get::<UsedLink>(&link_keys),
                    table.get::<Account>(&shop_keys),
                    table.get::<AdminUser>(&user_keys),
                )?;
                if used.is_some() {
                    return Err(AdminError::LinkUsed);
                }
                if !shop
                    .is_some_and(|s| s.partner_id == request.partner && s.kind == AccountKind::Shop)
                {
                    return Err(AdminError::UnknownShop);
                }
                let mut tx = Tx::new();
                let seat = Seat {
                    account_id: request.shop,
                    user_id: id,
                    granted_at: clock::sortable(now),
                };
                tx.put_new(&UsedLink {
                    link_hash: link_hash.clone(),
                    used_at: clock::sortable(now),
                    expires_at: request.link_expires_at.max(at) + 60,
                })?;
                let (user, confirm_token) = match existing {
                    Some(mut user) => {
                        if !user.shops.contains(&request.shop) {
                            user.shops.push(request.shop);
                            tx.put(&user)?.put(&seat)?;
                        }
                        (user, None)
                    }
                    None => {
                        let user = AdminUser {
                            id,
                            partner_id: request.partner,
                            email: request.email.clone(),
                            first_name: request.first_name.clone(),
                            last_name: request.last_name.clone(),
                            shops: vec![request.shop],
                            created_at: clock::sortable(now),
                            password_hash: None,
                        };
                        tx.put_new(&user)?.put(&seat)?;
                        tx.put_new(&ConfirmToken {
                            token_hash: token_hash(&confirm),
                            user_id: id,
                            expires_at: at + CONFIRM_SECONDS,
                        })?;
                        (user, Some(confirm.clone()))
                    }
                };
                tx.put_new(&session)?;
                Ok(Planned::new(
                    tx,
                    SignedIn {
                        user,
                        session_token: session_token.clone(),
                        session: session.clone(),
                        confirm_token,
                    },
                ))
            })
            .await
            .map_err(|e| match e {
                // Two uses of one link at once: the loser's condition on the link fails.
                AdminError::Tx(TxError::Conflict) => AdminError::LinkUsed,
                other => other,
            })
    }

    /// A new session for a user: (token, session). The token names the partner and the
    /// user (`ses_<partner>_<user>_<random>`), so a request reads the session, the user
    /// and what it needs of the partner together.
    fn new_session(user_id: Uuid, partner_id: PartnerId, now: OffsetDateTime) -> (String, Session) {
        let token = owned_token(&session_prefix(partner_id.as_uuid()), user_id);
        let session = Session {
            token_hash: token_hash(&token),
            user_id,
            partner_id,
            csrf: crate::secrets::random_hex16(),
            expires_at: now.unix_timestamp() + SESSION_SECONDS,
        };
        (token, session)
    }

    /// The welcome email's link: sets the user's password (the link then stops
    /// working) and signs the user in. Returns the session token.
    #[cfg(feature = "passwords")]
    pub async fn confirm(
        &self,
        token: &str,
        password: &str,
        now: OffsetDateTime,
    ) -> Result<String, AdminError> {
        let table = self.uow.table();
        let password_hash = hash_password(password)?;
        let confirm_keys = keys::admin_confirm(&token_hash(token));
        self.uow
            .apply(|| async {
                let owner = token_owner(CONFIRM_PREFIX, token);
                let (confirm, user) = tokio::try_join!(
                    table.get::<ConfirmToken>(&confirm_keys),
                    read_named_user(table, owner),
                )?;
                let confirm = confirm
                    .filter(|c| c.expires_at > now.unix_timestamp())
                    .ok_or(AdminError::UnknownConfirmation)?;
                let mut user = match (owner, user) {
                    (Some(owner), user) if owner == confirm.user_id => user,
                    (Some(_), _) => None,
                    // A token from before tokens named their user.
                    (None, _) => table.get(&keys::admin_user(confirm.user_id)).await?,
                }
                .ok_or(AdminError::UnknownConfirmation)?;
                user.password_hash = Some(password_hash.clone());
                let (session_token, session) = Self::new_session(user.id, user.partner_id, now);
                let mut tx = Tx::new();
                tx.put(&user)?.put_new(&session)?;
                tx.delete(confirm_keys.clone());
                Ok::<_, AdminError>(Planned::new(tx, session_token))
            })
            .await
    }

    /// Signs in with email and password: the user (of any partner) whose password
    /// matches. Returns the session token. Failures do not say whether the email exists.
    #[cfg(feature = "passwords")]
    pub async fn login(
        &self,
        email: &Email,
        password: &str,
        now: OffsetDateTime,
    ) -> Result<String, AdminError> {
        let users: Vec<AdminUser> = self
            .uow
            .table()
            .query_all(&crate::store::Query::gsi1(email_key(email)))
            .await?;
        let user = users
            .into_iter()
            .find(|u| {
                u.password_hash
                    .as_deref()
                    .is_some_and(|hash| verify_password(password, hash))
            })
            .ok_or(AdminError::BadLogin)?;
        let (token, session) = Self::new_session(user.id, user.partner_id, now);
        self.uow.table().put_new(&session).await?;
        Ok(token)
    }

    /// The session a cookie's token opens, and its user, if both are current.
    pub async fn session(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(Session, AdminUser)>, AdminError> {
        let table = self.uow.table();
        let owner = session_owners(token).map(|(_, user)| user);
        let session_keys = keys::admin_session(&token_hash(token));
        let (session, user) = tokio::try_join!(
            table.get::<Session>(&session_keys),
            read_named_user(table, owner),
        )?;
        let Some(session) = session.filter(|s| s.expires_at > now.unix_timestamp()) else {
            return Ok(None);
        };
        let user = match owner {
            Some(owner) if owner == session.user_id => user,
            Some(_) => None,
            // A session from before tokens named their user.
            None => table.get(&keys::admin_user(session.user_id)).await?,
        };
        Ok(user
            .filter(|u| u.partner_id == session.partner_id)
            .map(|u| (session, u)))
    }

    /// Ends a session.
    pub async fn sign_out(&self, session: &Session) -> Result<(), AdminError> {
        Ok(self
            .uow
            .table()
            .delete(&keys::admin_session(&session.token_hash))
            .await?)
    }
}

fn session_prefix(partner: Uuid) -> String {
    format!("{SESSION_PREFIX}{}_", partner.simple())
}

/// The partner and the user a session token names (unchecked: the session's record must
/// say the same).
fn session_owners(token: &str) -> Option<(Uuid, Uuid)> {
    let partner = token_owner(SESSION_PREFIX, token)?;
    let user = token_owner(&session_prefix(partner), token)?;
    Some((partner, user))
}

/// The partner a session token names, for reading what a request needs of it beside the
/// session (checked against the session once it is read).
pub fn session_partner_hint(token: &str) -> Option<PartnerId> {
    session_owners(token).map(|(partner, _)| PartnerId::from_uuid(partner))
}

/// The user a token names, if it names one (read beside the token's own record).
async fn read_named_user(
    table: &crate::store::Table,
    owner: Option<Uuid>,
) -> Result<Option<AdminUser>, StoreError> {
    match owner {
        Some(id) => table.get(&keys::admin_user(id)).await,
        None => Ok(None),
    }
}

/// Argon2id with the crate's default parameters (OWASP's recommended minimum), a random
/// salt, as a PHC string.
#[cfg(feature = "passwords")]
fn hash_password(password: &str) -> Result<String, AdminError> {
    use argon2::{Argon2, PasswordHasher, password_hash::SaltString};
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AdminError::Hash(e.to_string()))
}

#[cfg(feature = "passwords")]
fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::{Argon2, PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}
