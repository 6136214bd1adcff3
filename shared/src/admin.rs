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
    clock,
    domain::{AccountId, Email, PartnerId},
    secrets::{random_token, token_hash},
    store::{Keys, Planned, Record, StoreError, Tx, TxError, UnitOfWork, keys},
};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("this sign-in link was already used")]
    LinkUsed,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tx(#[from] TxError),
}

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
        keys::admin_user(self.id)
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
        let session_token = random_token("ses_");
        let confirm = random_token("cf_");
        let at = now.unix_timestamp();
        self.uow
            .apply(|| async {
                if self
                    .uow
                    .table()
                    .get::<UsedLink>(&keys::used_sso_link(&link_hash))
                    .await?
                    .is_some()
                {
                    return Err(AdminError::LinkUsed);
                }
                let existing: Option<AdminUser> =
                    self.uow.table().get(&keys::admin_user(id)).await?;
                let mut tx = Tx::new();
                tx.put_new(&UsedLink {
                    link_hash: link_hash.clone(),
                    used_at: clock::sortable(now),
                    expires_at: request.link_expires_at.max(at) + 60,
                })?;
                let (user, confirm_token) = match existing {
                    Some(mut user) => {
                        if !user.shops.contains(&request.shop) {
                            user.shops.push(request.shop);
                            tx.put(&user)?;
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
                        };
                        tx.put_new(&user)?;
                        tx.put_new(&ConfirmToken {
                            token_hash: token_hash(&confirm),
                            user_id: id,
                            expires_at: at + CONFIRM_SECONDS,
                        })?;
                        (user, Some(confirm.clone()))
                    }
                };
                let session = Session {
                    token_hash: token_hash(&session_token),
                    user_id: id,
                    partner_id: request.partner,
                    csrf: crate::secrets::random_hex16(),
                    expires_at: at + SESSION_SECONDS,
                };
                tx.put_new(&session)?;
                Ok(Planned::new(
                    tx,
                    SignedIn {
                        user,
                        session_token: session_token.clone(),
                        session,
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

    /// The session a cookie's token opens, and its user, if both are current.
    pub async fn session(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(Session, AdminUser)>, AdminError> {
        let Some(session) = self
            .uow
            .table()
            .get::<Session>(&keys::admin_session(&token_hash(token)))
            .await?
            .filter(|s| s.expires_at > now.unix_timestamp())
        else {
            return Ok(None);
        };
        let user: Option<AdminUser> = self
            .uow
            .table()
            .get(&keys::admin_user(session.user_id))
            .await?;
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
