//! The admin page (signed-payload contract, step 4): partners' SSO links sign a shop's
//! stakeholders in; the page shows the user's shops with their state, plans, billing
//! period and recent events. Server-rendered HTML (`html`); errors a person meets are
//! HTML pages too, never JSON.

mod html;

use std::sync::Arc;

use axum::{
    Form, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use shared::{
    Hub,
    admin::{SESSION_SECONDS, Session, SsoRequest},
    clock,
    domain::{Email, ShopDomain, free_text},
    http::{ApiError, Path, auth::partner_by_token, with_fallbacks},
    runtime::Function,
    signed_payload::{PayloadVerifier, claims_into},
};

pub const NAME: &str = "admin-web";
pub const SSO_PATH: &str = "/api/admin/users/partnerSignin/{partner_token}/{payload}";
pub const SESSION_COOKIE: &str = "hub_session";
/// A signed-in user asks for a plan: a subscription change request to the partner.
pub const CHANGE_PATH: &str = "/admin/shops/{account}/subscriptions";

pub fn function() -> Function {
    Function::http(NAME, router)
}

struct AdminWeb {
    hub: Arc<Hub>,
    /// SSO links live briefly (`SSO_LINK_LIFETIME_SECONDS`): they are in URLs.
    links: PayloadVerifier,
}

pub fn router(hub: Arc<Hub>) -> Router {
    let links = PayloadVerifier::new(hub.config.sso_link_lifetime, hub.config.clock_skew);
    with_fallbacks(
        Router::new()
            .route(SSO_PATH, get(sso))
            .route("/admin", get(page))
            .route("/admin/logout", post(logout))
            .route(CHANGE_PATH, post(ask_for_plan))
            .route("/admin/confirm/{token}", get(confirm_form).post(confirm))
            .route("/admin/login", get(login_form).post(login)),
    )
    .with_state(Arc::new(AdminWeb { hub, links }))
}

/// An error page a person can read.
struct PageError(StatusCode, String);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e.status, e.message)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        html::error_page(self.0, &self.1)
    }
}

#[derive(Deserialize)]
struct SsoParams {
    partner_token: String,
    payload: String,
}

#[derive(Deserialize)]
struct SsoClaims {
    shop: Option<String>,
    user: Option<SsoUser>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SsoUser {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
}

fn refused(status: StatusCode, message: &str) -> PageError {
    PageError(status, message.to_owned())
}

/// `GET /api/admin/users/partnerSignin/{partnerToken}/{payload}`: signs the link's user
/// in (302 to `/admin` with the session cookie), creating the user and granting the
/// shop as needed. A bad, expired, replayed or foreign link gets an error page.
async fn sso(
    State(web): State<Arc<AdminWeb>>,
    parts: Parts,
    Path(params): Path<SsoParams>,
) -> Result<Response, PageError> {
    let hub = &web.hub;
    let partner = partner_by_token(hub, &parts, &params.partner_token).await?;
    let now = clock::now();
    let claims = web
        .links
        .verify(&params.payload, &partner.keys, now)
        .map_err(|e| {
            refused(
                StatusCode::UNAUTHORIZED,
                &format!("This sign-in link is not valid: {e}."),
            )
        })?;
    let link_expires_at = claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0);
    let parsed: SsoClaims = claims_into(&claims).map_err(|_| {
        refused(
            StatusCode::BAD_REQUEST,
            "This sign-in link's content is not valid.",
        )
    })?;
    let bad = |what: &str| {
        refused(
            StatusCode::BAD_REQUEST,
            &format!("This sign-in link has no valid {what}."),
        )
    };
    let domain = parsed
        .shop
        .as_deref()
        .and_then(|s| ShopDomain::parse(s).ok())
        .ok_or_else(|| bad("shop"))?;
    let user = parsed.user.ok_or_else(|| bad("user"))?;
    let email = user
        .email
        .as_deref()
        .and_then(|e| Email::parse(e).ok())
        .ok_or_else(|| bad("user email"))?;
    let name = |value: Option<String>| {
        value
            .and_then(|v| free_text(&v).ok().flatten())
            .unwrap_or_default()
    };
    let request = SsoRequest {
        partner: partner.id,
        // Checked as the partner's in the sign-in's own reads.
        shop: shared::domain::AccountId::for_shop(&domain),
        email: email.clone(),
        first_name: name(user.first_name),
        last_name: name(user.last_name),
        // Single use is by signature, never by the link's text (a `%20` added to a
        // used link must not make it a new one).
        link: shared::signed_payload::signature_identity(&params.payload)
            .ok_or_else(|| bad("signature"))?,
        link_expires_at,
    };
    let signed_in = hub
        .admin
        .sign_in(&request, now)
        .await
        .map_err(|e| match e {
            shared::admin::AdminError::LinkUsed => refused(
                StatusCode::GONE,
                "This sign-in link was already used. Ask for a new one where you found it.",
            ),
            shared::admin::AdminError::UnknownShop => refused(
                StatusCode::NOT_FOUND,
                "This sign-in link names a shop that is not there.",
            ),
            other => {
                tracing::error!(error = %other, "sign-in failed");
                refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Signing in failed; please try the link again.",
                )
            }
        })?;
    if let Some(token) = &signed_in.confirm_token {
        welcome(hub, &parts.headers, &email, &request.first_name, token).await;
    }
    session_response(&signed_in.session_token)
}

fn session_response(token: &str) -> Result<Response, PageError> {
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age={SESSION_SECONDS}"
    );
    let mut response = (StatusCode::FOUND, [(header::LOCATION, "/admin")]).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie)
            .map_err(|_| refused(StatusCode::INTERNAL_SERVER_ERROR, "Signing in failed."))?,
    );
    Ok(response)
}

/// The shortest password the page accepts.
const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Deserialize)]
struct TokenParam {
    token: String,
}

/// Double-submit CSRF for the forms filled before there is a session: the form's hidden
/// token is also a `SameSite=Strict` cookie scoped to the form's path, and a post must
/// carry both, equal. (Forms inside a session use the session's own CSRF token.)
struct FormCsrf {
    cookie: &'static str,
    path: &'static str,
}

const LOGIN_CSRF: FormCsrf = FormCsrf {
    cookie: "hub_login_csrf",
    path: "/admin/login",
};
const CONFIRM_CSRF: FormCsrf = FormCsrf {
    cookie: "hub_confirm_csrf",
    path: "/admin/confirm",
};

impl FormCsrf {
    /// A new token and the form rendered with it, the cookie set.
    fn serve(&self, render: impl FnOnce(&str) -> Response) -> Response {
        let csrf = shared::secrets::random_hex16();
        let mut response = render(&csrf);
        if let Ok(cookie) = HeaderValue::from_str(&format!(
            "{}={csrf}; HttpOnly; Secure; SameSite=Strict; Path={}; Max-Age=3600",
            self.cookie, self.path
        )) {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        response
    }

    /// The token, when the post carries the cookie's value in the form; else 403.
    fn check(&self, headers: &HeaderMap, sent: Option<&str>) -> Result<String, PageError> {
        let expected = cookie_value(headers, self.cookie).unwrap_or_default();
        let sent = sent.unwrap_or_default();
        if expected.is_empty()
            || !shared::secrets::token_matches(sent, &shared::secrets::token_hash(&expected))
        {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "This form has expired; reload the page and try again.",
            ));
        }
        Ok(expected)
    }
}

/// `GET /admin/confirm/{token}`: the welcome email's link, a form to set a password.
async fn confirm_form(Path(TokenParam { token }): Path<TokenParam>) -> Response {
    CONFIRM_CSRF.serve(|csrf| html::password_form(&token, csrf, None))
}

#[derive(Deserialize)]
struct PasswordForm {
    password: Option<String>,
    repeat: Option<String>,
    csrf: Option<String>,
}

/// `POST /admin/confirm/{token}`: sets the password, signs in (302 to `/admin`).
async fn confirm(
    State(web): State<Arc<AdminWeb>>,
    Path(TokenParam { token }): Path<TokenParam>,
    headers: HeaderMap,
    form: Result<Form<PasswordForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let form = form.ok().map(|Form(f)| f);
    let csrf = CONFIRM_CSRF.check(&headers, form.as_ref().and_then(|f| f.csrf.as_deref()))?;
    let password = form
        .as_ref()
        .and_then(|f| f.password.clone())
        .unwrap_or_default();
    let repeat = form.and_then(|f| f.repeat).unwrap_or_default();
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > 1024 {
        return Ok(html::password_form(
            &token,
            &csrf,
            Some(&format!(
                "Choose a password of at least {MIN_PASSWORD_CHARS} characters."
            )),
        ));
    }
    if password != repeat {
        return Ok(html::password_form(
            &token,
            &csrf,
            Some("The two passwords differ."),
        ));
    }
    let session = web
        .hub
        .admin
        .confirm(&token, &password, clock::now())
        .await
        .map_err(|e| match e {
            shared::admin::AdminError::UnknownConfirmation => refused(
                StatusCode::GONE,
                "This confirmation link is not valid any more. Sign in through your partner's portal.",
            ),
            other => {
                tracing::error!(error = %other, "confirming failed");
                refused(StatusCode::SERVICE_UNAVAILABLE, "Confirming failed; please try again.")
            }
        })?;
    session_response(&session)
}

/// `GET /admin/login`: email and password.
async fn login_form() -> Response {
    LOGIN_CSRF.serve(|csrf| html::login_form(csrf, None, StatusCode::OK))
}

#[derive(Deserialize)]
struct LoginForm {
    email: Option<String>,
    password: Option<String>,
    csrf: Option<String>,
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
}

/// `POST /admin/login`: signs in with email and password; repeated failures for an
/// email lock it out for the window (429). Failures never say whether the email exists.
async fn login(
    State(web): State<Arc<AdminWeb>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let Ok(Form(form)) = form else {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "The sign-in form was not complete.",
        ));
    };
    let expected = LOGIN_CSRF.check(&headers, form.csrf.as_deref())?;
    let hub = &web.hub;
    let email_text = form.email.unwrap_or_default().trim().to_lowercase();
    let scope = shared::throttle::Scope::AdminLogin(email_text.clone());
    let now = clock::now();
    if let Some(wait) = hub.throttle.blocked(&scope, now) {
        return Err(locked(wait));
    }
    let attempt = match Email::parse(&email_text) {
        Ok(email) => {
            hub.admin
                .login(&email, &form.password.unwrap_or_default(), now)
                .await
        }
        Err(_) => Err(shared::admin::AdminError::BadLogin),
    };
    match attempt {
        Ok(token) => session_response(&token),
        Err(shared::admin::AdminError::BadLogin) => {
            if let Some(wait) = hub.throttle.failed(&scope, now).await {
                return Err(locked(wait));
            }
            Ok(html::login_form(
                &expected,
                Some("The email or password is not right."),
                StatusCode::UNAUTHORIZED,
            ))
        }
        Err(other) => {
            tracing::error!(error = %other, "sign-in failed");
            Err(refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "Signing in failed; please try again.",
            ))
        }
    }
}

fn locked(wait: std::time::Duration) -> PageError {
    PageError(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "Too many failed sign-ins for this email; try again in {} minutes.",
            wait.as_secs().div_ceil(60)
        ),
    )
}

/// The welcome email with the link that confirms the account and sets a password. A
/// failure is logged: the user is signed in already, and the next link tries again.
async fn welcome(hub: &Hub, headers: &HeaderMap, to: &Email, first_name: &str, token: &str) {
    let Some(mailer) = &hub.mailer else {
        tracing::warn!("no SENDER_EMAIL: the welcome email was not sent");
        return;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if host.starts_with("127.0.0.1") || host.starts_with("localhost") {
        "http"
    } else {
        "https"
    };
    let email = shared::email::Email {
        to: to.as_str().to_owned(),
        subject: "Welcome to your shop's admin page".into(),
        text: format!(
            "Hello {first_name},\n\nyou can now see your shop's plans and activity. Confirm your account and set a password here:\n\n{scheme}://{host}/admin/confirm/{token}\n\nThe link works for 7 days.\n"
        ),
    };
    if let Err(e) = mailer.send(&email).await {
        tracing::error!(error = %e, "the welcome email was not sent");
    }
}

/// The session a request's cookie opens, if any.
async fn session_of(hub: &Hub, headers: &HeaderMap) -> Option<(Session, shared::admin::AdminUser)> {
    let token = cookie_value(headers, SESSION_COOKIE)?;
    hub.admin.session(&token, clock::now()).await.ok().flatten()
}

/// `GET /admin`: the signed-in user's shops.
async fn page(State(web): State<Arc<AdminWeb>>, headers: HeaderMap) -> Result<Response, PageError> {
    let hub = &web.hub;
    let Some((session, user)) = session_of(hub, &headers).await else {
        return Err(refused(
            StatusCode::UNAUTHORIZED,
            "You are not signed in. Use the link in your partner's portal.",
        ));
    };
    // Every shop's reads and the catalog go out together (one round trip).
    let shop_views = user
        .shops
        .iter()
        .map(|id| shop_view(hub, *id, session.partner_id));
    let (shops, catalog) = tokio::join!(futures::future::join_all(shop_views), hub.plans.list());
    let shops: Vec<_> = shops.into_iter().flatten().collect();
    let catalog = catalog.unwrap_or_default();
    Ok(html::admin_page(&user, &session, &shops, &catalog))
}

/// How much of a shop's timeline the page reads (newest first): its recent events and
/// the webhook attempts among them, one page however long the timeline.
const RECENT_ENTRIES: usize = 100;

/// A shop as the page shows it (`None`: gone, or not the session's partner's).
async fn shop_view(
    hub: &Hub,
    id: shared::domain::AccountId,
    partner: shared::domain::PartnerId,
) -> Option<html::ShopView> {
    let (account, selection, events, change_requests) = tokio::join!(
        hub.accounts.get(id),
        hub.billing.selection(id),
        hub.timeline.latest(id, RECENT_ENTRIES),
        shared::partner_webhooks::change_requests(&hub.table, id, 5),
    );
    // A session shows only its partner's shops.
    let account = account.ok().flatten().filter(|a| a.partner_id == partner)?;
    let mut events = events.unwrap_or_default();
    let attempts: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "webhook.attempted")
        .take(10)
        .cloned()
        .collect();
    events.truncate(10);
    Some(html::ShopView {
        account,
        selection: selection.ok().flatten(),
        events,
        attempts,
        change_requests: change_requests.unwrap_or_default(),
    })
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: Option<String>,
}

#[derive(Deserialize)]
struct AccountParam {
    account: String,
}

#[derive(Deserialize)]
struct PlanForm {
    csrf: Option<String>,
    plan: Option<String>,
}

/// `POST /admin/shops/{account}/subscriptions` (`plan`, `csrf`): the signed-in user asks
/// for one more plan; the hub sends the partner a change request (contract 5.2) for the
/// shop's plans and this one, and the partner's `confirmationUrl` appears on the page.
async fn ask_for_plan(
    State(web): State<Arc<AdminWeb>>,
    headers: HeaderMap,
    Path(AccountParam { account }): Path<AccountParam>,
    form: Result<Form<PlanForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let hub = &web.hub;
    let form = form.ok().map(|Form(f)| f);
    let account = shared::domain::AccountId::parse(&account).ok();
    let plan_id = form
        .as_ref()
        .and_then(|f| f.plan.as_deref())
        .and_then(|p| p.trim().parse::<u32>().ok());
    let partner_hint = cookie_value(&headers, SESSION_COOKIE)
        .as_deref()
        .and_then(shared::admin::session_partner_hint);
    // The session, the shop, its plans, the catalog and the partner the session token
    // names in one round trip (what is read is used only once the session is known to
    // hold the shop and be the partner's).
    let (signed_in, shop, selection, plan, hinted_partner) = tokio::join!(
        session_of(hub, &headers),
        async {
            match account {
                Some(id) => hub.accounts.get(id).await.ok().flatten(),
                None => None,
            }
        },
        async {
            match account {
                Some(id) => hub.billing.selection(id).await.map_err(|_| ()),
                None => Ok(None),
            }
        },
        async {
            match plan_id {
                Some(id) => hub.plans.current(&[id]).await.ok(),
                None => None,
            }
        },
        async {
            match partner_hint {
                Some(id) => hub.partners.get_cached(id).await.ok().flatten(),
                None => None,
            }
        },
    );
    let Some((session, user)) = signed_in else {
        return Err(refused(StatusCode::UNAUTHORIZED, "You are not signed in."));
    };
    let csrf = form
        .as_ref()
        .and_then(|f| f.csrf.clone())
        .unwrap_or_default();
    if !shared::secrets::token_matches(&csrf, &shared::secrets::token_hash(&session.csrf)) {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "This form has expired; reload the page and try again.",
        ));
    }
    let not_yours = || refused(StatusCode::NOT_FOUND, "No such shop.");
    let shop = shop
        .filter(|shop| user.shops.contains(&shop.id) && shop.partner_id == session.partner_id)
        .ok_or_else(not_yours)?;
    let unavailable = || {
        refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "The request could not be sent; please try again.",
        )
    };
    let plan_id =
        plan_id.ok_or_else(|| refused(StatusCode::UNPROCESSABLE_ENTITY, "Choose a plan."))?;
    let plan =
        plan.ok_or_else(|| refused(StatusCode::UNPROCESSABLE_ENTITY, "There is no such plan."))?;
    let mut ids: Vec<u32> = selection
        .map_err(|()| unavailable())?
        .map(|s| s.plans.iter().map(|p| p.spec.id).collect())
        .unwrap_or_default();
    if ids.contains(&plan_id) {
        return Err(refused(
            StatusCode::CONFLICT,
            "The shop has this plan already.",
        ));
    }
    ids.push(plan_id);
    let partner = match hinted_partner.filter(|p| p.id == session.partner_id) {
        Some(partner) => Some(partner),
        None => hub
            .partners
            .get_cached(session.partner_id)
            .await
            .map_err(|_| unavailable())?,
    }
    .filter(|p| p.webhook.is_some())
    .ok_or_else(|| {
        refused(
            StatusCode::CONFLICT,
            "Your partner does not take subscription changes here yet; please contact them.",
        )
    })?;
    let reason = format!(
        "{} asked on the admin page by {}",
        plan.first()
            .map(|p| p.spec.name.as_str())
            .unwrap_or("a plan"),
        user.email.as_str()
    );
    hub.uow
        .apply(|| async {
            let mut tx = shared::store::Tx::new();
            shared::partner_webhooks::stage_change_request(
                &mut tx,
                &partner,
                shop.id,
                ids.clone(),
                reason.clone(),
            )?;
            Ok::<_, shared::store::TxError>(shared::store::Planned::new(tx, ()))
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "a change request was not written");
            unavailable()
        })?;
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static("/admin"))],
    )
        .into_response())
}

/// `POST /admin/logout`: ends the session (the form's CSRF token must match it).
async fn logout(
    State(web): State<Arc<AdminWeb>>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let Some((session, _)) = session_of(&web.hub, &headers).await else {
        return Err(refused(StatusCode::UNAUTHORIZED, "You are not signed in."));
    };
    let csrf = form.ok().and_then(|Form(f)| f.csrf).unwrap_or_default();
    if !shared::secrets::token_matches(&csrf, &shared::secrets::token_hash(&session.csrf)) {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "This form has expired; reload the page and try again.",
        ));
    }
    web.hub.admin.sign_out(&session).await.map_err(|_| {
        refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing out failed; please try again.",
        )
    })?;
    let mut response = html::message_page(StatusCode::OK, "Signed out", "You are signed out.");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("hub_session=; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=0"),
    );
    Ok(response)
}
