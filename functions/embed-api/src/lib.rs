//! The embed API (`embed-api.txt`): a partner (with its partner JWT) manages its
//! end-customers' sub-accounts and gets a JWT per tenant; with a tenant's JWT, the
//! partner's page adds data connections ("servers") from the connector catalog, with
//! API keys and passwords, or through an OAuth2 flow the end-customer completes in a
//! browser (PKCE; the provider sends the browser back to `/api/oauth/callback`).
//!
//! CORS is decided here (the HTTP API has no CORS configuration): a browser origin
//! registered to a partner (`hub-admin embed-origin`) gets `Access-Control-Allow-Origin`
//! on that partner's calls and on preflights; any other origin gets no CORS headers.

mod wire;

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::{
    Hub,
    embed::{SubAccount, catalog},
    http::{
        AnyJson, ApiError, Path, Query,
        auth::{EmbedAuth, EmbedCallerSlot, Sealing, TenantToken},
        with_fallbacks,
    },
    outbound::{OutboundClient, OutboundConfig},
    partners::Partner,
    runtime::Function,
};

pub const NAME: &str = "embed-api";
pub const SUBACCOUNTS_PATH: &str = "/api/subaccount";
pub const SUBACCOUNT_PATH: &str = "/api/subaccount/{id}";
pub const TOKEN_BY_EXTERNAL_ID_PATH: &str = "/api/subaccount/token";
pub const TOKEN_PATH: &str = "/api/subaccount/{id}/token";
pub const SERVERTYPES_PATH: &str = "/api/servertypes";
pub const SERVERS_PATH: &str = "/api/servers";
pub const SERVER_PATH: &str = "/api/server/{id}";
pub const SERVER_LOGS_PATH: &str = "/api/server/{id}/logs";
pub const OAUTH_CALLBACK_PATH: &str = shared::embed::oauth::CALLBACK_PATH;
pub const TABLE_PATH: &str = "/table";
pub const INTERFACE_PATH: &str = "/interface";

/// Page sizes of the lists.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;

pub fn function() -> Function {
    Function::http(NAME, router)
}

#[derive(Clone)]
struct EmbedApi {
    hub: Arc<Hub>,
    /// `Err`: the outbound client could not be built; OAuth2 routes answer 500.
    outbound: Result<OutboundClient, String>,
}

impl axum::extract::FromRef<EmbedApi> for Arc<Hub> {
    fn from_ref(api: &EmbedApi) -> Self {
        api.hub.clone()
    }
}

impl EmbedApi {
    fn outbound(&self) -> Result<&OutboundClient, ApiError> {
        self.outbound.as_ref().map_err(|e| {
            tracing::error!(error = %e, "no outbound client");
            ApiError::internal()
        })
    }
}

pub fn router(hub: Arc<Hub>) -> Router {
    let outbound = OutboundConfig::from_config(&hub.config).and_then(OutboundClient::new);
    if let Err(e) = &outbound {
        tracing::error!(error = %e, "the outbound client could not be built");
    }
    let api = EmbedApi { hub, outbound };
    // Every route but the provider's callback answers preflights (`OPTIONS`, routed by
    // the template); the CORS layer runs on matched routes only, so an unknown path is
    // the hub's 404 whatever its method.
    with_fallbacks(
        Router::new()
            .route(
                SUBACCOUNTS_PATH,
                post(create_sub_account)
                    .get(list_sub_accounts)
                    .put(update_sub_account_by_external_id)
                    .delete(delete_sub_account_by_external_id)
                    .options(preflight),
            )
            .route(
                TOKEN_BY_EXTERNAL_ID_PATH,
                get(token_by_external_id).options(preflight),
            )
            .route(
                SUBACCOUNT_PATH,
                get(get_sub_account)
                    .put(update_sub_account)
                    .delete(delete_sub_account)
                    .options(preflight),
            )
            .route(
                TOKEN_PATH,
                get(token).delete(revoke_tokens).options(preflight),
            )
            .route(SERVERTYPES_PATH, get(servertypes).options(preflight))
            .route(
                SERVERS_PATH,
                post(create_server).get(list_servers).options(preflight),
            )
            .route(
                SERVER_PATH,
                get(get_server).delete(delete_server).options(preflight),
            )
            .route(SERVER_LOGS_PATH, get(server_logs).options(preflight))
            .route(OAUTH_CALLBACK_PATH, get(oauth_callback))
            .route(TABLE_PATH, post(not_yet).options(preflight))
            .route(INTERFACE_PATH, post(not_yet).options(preflight))
            .route_layer(middleware::from_fn_with_state(api.clone(), cors)),
    )
    .with_state(api)
}

// ------------------------------------------------------------------------- CORS

const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "Authorization, Content-Type";
const MAX_AGE_SECONDS: &str = "600";

/// The partner a request's `Origin` is registered to (none without one).
async fn origin_owner(
    api: &EmbedApi,
    headers: &HeaderMap,
) -> Result<(Option<String>, Option<shared::domain::PartnerId>), ApiError> {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let owner = match &origin {
        Some(origin) => api
            .hub
            .embed
            .request_origin_owner(origin)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "the origin's partner could not be read");
                ApiError::internal()
            })?,
        None => None,
    };
    Ok((origin, owner))
}

/// `OPTIONS` on every embed route: a preflight carries no token; 204 with the CORS
/// headers for an origin registered to a partner, 403 for any other.
async fn preflight(State(api): State<EmbedApi>, headers: HeaderMap) -> Response {
    let (origin, owner) = match origin_owner(&api, &headers).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let mut response = match (&origin, owner) {
        (Some(_), Some(_)) => StatusCode::NO_CONTENT.into_response(),
        _ => ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this origin is not registered for the embed API (hub-admin embed-origin)",
        )
        .with_field("Origin")
        .into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let (Some(origin), Some(_)) = (&origin, owner) {
        allow(headers, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE_SECONDS),
        );
    }
    response
}

/// Every other response gets `Vary: Origin`, and `Access-Control-Allow-Origin` when the
/// origin is registered to the partner the request was authenticated for (or, for a
/// refusal before authentication, to any partner, so the page can read the error).
async fn cors(State(api): State<EmbedApi>, mut request: Request, next: Next) -> Response {
    if request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    let (origin, owner) = match origin_owner(&api, request.headers()).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let slot = EmbedCallerSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let (Some(origin), Some(owner)) = (&origin, owner)
        && slot.0.get().is_none_or(|caller| *caller == owner)
    {
        allow(headers, origin);
    }
    response
}

fn allow(headers: &mut HeaderMap, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
}

// ----------------------------------------------------------------- sub-accounts

#[derive(Deserialize)]
struct IdParam {
    id: String,
}

/// A sub-account or connection id in a path: a positive integer.
fn parse_id(value: &str, field: &str) -> Result<u64, ApiError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::invalid(field, "must be a positive integer"))
}

#[derive(Deserialize, Default)]
struct ListParams {
    external_id: Option<String>,
    limit: Option<String>,
    after: Option<String>,
    expire: Option<String>,
}

impl ListParams {
    fn limit(&self) -> Result<usize, ApiError> {
        match &self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| ApiError::invalid("limit", "must be between 1 and 200")),
        }
    }

    fn after(&self) -> Result<Option<u64>, ApiError> {
        self.after
            .as_deref()
            .map(|v| parse_id(v, "after"))
            .transpose()
    }

    /// `expire=false` asks for a non-expiring token.
    fn expire(&self) -> Result<bool, ApiError> {
        match self
            .expire
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(ApiError::invalid("expire", "must be true or false")),
        }
    }
}

async fn own_sub_account(
    api: &EmbedApi,
    partner: &Partner,
    id: &str,
) -> Result<SubAccount, ApiError> {
    let number = parse_id(id, "id")?;
    api.hub
        .embed
        .sub_account(partner.id, number)
        .await?
        .ok_or_else(|| shared::embed::EmbedError::UnknownSubAccount.into())
}

/// The sub-account a request names by `external_id` (query, else body).
async fn by_external_id(
    api: &EmbedApi,
    partner: &Partner,
    query: Option<&str>,
    body: Option<&serde_json::Map<String, Value>>,
) -> Result<SubAccount, ApiError> {
    let external_id = match wire::external_id_param(query)? {
        Some(id) => id,
        None => body
            .map(wire::external_id)
            .transpose()?
            .flatten()
            .ok_or_else(|| ApiError::missing_field("external_id"))?,
    };
    api.hub
        .embed
        .sub_account_by_external(partner.id, &external_id)
        .await?
        .ok_or_else(|| shared::embed::EmbedError::UnknownSubAccount.into())
}

/// `POST /api/subaccount`: 201 with the new sub-account; the same `external_id` again
/// with the same details answers 200 with it, with other details 409.
async fn create_sub_account(
    State(api): State<EmbedApi>,
    EmbedAuth(partner): EmbedAuth<Partner>,
    body: Result<AnyJson<Value>, ApiError>,
) -> Result<Response, ApiError> {
    let AnyJson(body) = body?;
    let body = wire::object(&body)?;
    let change = wire::profile_change(body)?;
    let external_id =
        wire::external_id(body)?.ok_or_else(|| ApiError::missing_field("external_id"))?;
    let (sub, created) = api
        .hub
        .embed
        .create_sub_account(partner.id, external_id, change.into_profile())
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(wire::sub_account(&sub))).into_response())
}

/// `GET /api/subaccount[?external_id=][&limit=&after=]`:
/// `{"subaccounts": [...], "next": <after for the next page> | null}`.
async fn list_sub_accounts(
    State(api): State<EmbedApi>,
    EmbedAuth(partner): EmbedAuth<Partner>,
    Query(params): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    if let Some(external_id) = wire::external_id_param(params.external_id.as_deref())? {
        let found = api
            .hub
            .embed
            .sub_account_by_external(partner.id, &external_id)
            .await?;
        let items: Vec<Value> = found.iter().map(wire::sub_account).collect();
        return Ok(Json(json!({ "subaccounts": items, "next": null })));
    }
    let page = api
        .hub
        .embed
        .list_sub_accounts(partner.id, params.limit()?, params.after()?)
        .await?;
    let items: Vec<Value> = page.items.iter().map(wire::sub_account).collect();
    Ok(Json(json!({ "subaccounts": items, "next": page.next })))
}

async fn get_sub_account(
    State(api): State<EmbedApi>,
    EmbedAuth(partner): EmbedAuth<Partner>,
    Path(IdParam { id }): Path<IdParam>,
) -> Result<Json<Value>, ApiError> {
    let sub = own_sub_account(&api, &partner, &id).await?;
    Ok(Json(wire::sub_account(&sub)))
}

async fn update(
    api: &EmbedApi,
    sub: SubAccount,
    body: &serde_json::Map<String, Value>,
) -> Result<Json<Value>, ApiError> {
    if let Some(external_id) = wire::external_id(body)?
        && external_id != sub.external_id
    {
        return Err(ApiError::invalid(
            "external_id",
            "cannot change (delete the sub-account and create it again)",
        ));
    }
    let change = wire::profile_change(body)?;
    let sub = api.hub.embed.update_sub_account(&sub, change).await?;
    Ok(Json(wire::sub_account(&sub)))
}

/// `PUT /api/subaccount/{id}`: changes the given fields (`null` clears one).
async fn update_sub_account(
    State(api): State<EmbedApi>,
    EmbedAuth(partner): EmbedAuth<Partner>,
    Path(IdParam { id }): Path<IdParam>,
    body: Result<AnyJson<Value>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let AnyJson(body) = body?;
    let body = wire::object(&body)?;
    let sub = own_sub_account(&api, &partner, &id).await?;
    update(&api, sub, body).await
}

/// `PUT /api/subaccount` with the `external_id` in the body (or the query).
async fn update_sub_account_by_external_id(
    State(api): State<EmbedApi>,
    EmbedAuth(partner): EmbedAuth<Partner>,
    Query(params): Query<ListParams>,
    body: Result<AnyJson<Value>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let AnyJson(body) = body?;
    let body = wire::object(&body)?;
    let sub = by_external_id(&api, &partner, params.external_id.as_deref(), Some(body)).await?;
    update(&api, sub, body).await
}

/// `DELETE /api/subaccount/{id}`: tokens revoked at once, connections and their
/// credentials deleted, personal data erased; a tombstone is kept. Repeatable.
async fn delete_sub_account(
    State(api): State<EmbedApi>,
    EmbedAuth(partner): EmbedAuth<Partner>,
    Path(IdParam { id }): Path<IdParam>,
) -> Result<Json<Value>, ApiError> {
    let number = parse_id(&id, "id")?;
    let tombstone = api
        .hub
        .embed
        .delete_sub_account(partner.id, number, None)
        .await?;
    Ok(Json(wire::deleted(&tombstone)))
}

/// `DELETE /api/subaccount?external_id=` (or the `external_id` in a JSON body).
async fn delete_sub_account_by_external_id(
    State(api): State<EmbedApi>,
    EmbedAuth(partner): EmbedAuth<Partner>,
    Query(params): Query<ListParams>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Option<Value> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(shared::http::parse_json(&body)?)
    };
    let body = body.as_ref().map(wire::object).transpose()?;
    let sub = by_external_id(&api, &partner, params.external_id.as_deref(), body).await?;
    let tombstone = api
        .hub
        .embed
        .delete_sub_account(partner.id, sub.number, Some(sub))
        .await?;
    Ok(Json(wire::deleted(&tombstone)))
}

async fn token_answer(
    api: &EmbedApi,
    sub: &SubAccount,
    expire: bool,
) -> Result<Json<Value>, ApiError> {
    let issued = api.hub.embed.issue_tenant_token(sub, expire).await?;
    let expires_at = issued
        .expires_at
        .and_then(|at| time::OffsetDateTime::from_unix_timestamp(at).ok())
        .map(shared::clock::rfc3339_millis);
    Ok(Json(json!({
        "token": issued.token,
        "token_type": "JWT",
        "subaccount_id": sub.number,
        "expires_at": expires_at,
        "expires_in": expire.then(|| api.hub.embed.tenant_token_lifetime.as_secs()),
    })))
}

/// `GET /api/subaccount/{id}/token[?expire=false]`: a tenant token.
async fn token(
    State(api): State<EmbedApi>,
    EmbedAuth(partner): EmbedAuth<Partner>,
    Path(IdParam { id }): Path<IdParam>,
    Query(params): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let expire = params.expire()?;
    let sub = own_sub_account(&api, &partner, &id).await?;
    token_answer(&api, &sub, expire).await
}

/// `GET /api/subaccount/token?external_id=…[&expire=false]`.
async fn token_by_external_id(
    State(api): State<EmbedApi>,
    EmbedAuth(partner): EmbedAuth<Partner>,
    Query(params): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let expire = params.expire()?;
    let sub = by_external_id(&api, &partner, params.external_id.as_deref(), None).await?;
    token_answer(&api, &sub, expire).await
}

/// `DELETE /api/subaccount/{id}/token`: every tenant token issued so far stops working.
async fn revoke_tokens(
    State(api): State<EmbedApi>,
    EmbedAuth(partner): EmbedAuth<Partner>,
    Path(IdParam { id }): Path<IdParam>,
) -> Result<Json<Value>, ApiError> {
    let number = parse_id(&id, "id")?;
    let sub = api
        .hub
        .embed
        .revoke_tenant_tokens(partner.id, number)
        .await?;
    Ok(Json(
        json!({ "subaccount_id": sub.number, "revoked": true }),
    ))
}

// --------------------------------------------------------- connectors, servers

/// `GET /api/servertypes`: the connector catalog with each connect form.
async fn servertypes(EmbedAuth(_caller): EmbedAuth<shared::embed::Caller>) -> Json<Value> {
    let items: Vec<Value> = catalog::all().iter().map(wire::servertype).collect();
    Json(json!({ "servertypes": items }))
}

/// `POST /api/servers` `{servertype_id, ...form fields}`: 201 with the connection; for
/// OAuth2 connectors `{id, oauth_url}`, the end-customer to open `oauth_url`.
async fn create_server(
    State(api): State<EmbedApi>,
    Sealing(EmbedAuth(sub)): Sealing<EmbedAuth<SubAccount>>,
    headers: axum::http::HeaderMap,
    body: Result<AnyJson<Value>, ApiError>,
) -> Result<Response, ApiError> {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let AnyJson(body) = body?;
    let mut form = wire::object(&body)?.clone();
    let servertype_id = match form.remove("servertype_id") {
        None | Some(Value::Null) => return Err(ApiError::missing_field("servertype_id")),
        Some(value) => value
            .as_u64()
            .ok_or_else(|| ApiError::invalid("servertype_id", "must be an integer"))?,
    };
    let server = catalog::find(servertype_id).ok_or_else(|| {
        ApiError::invalid("servertype_id", "is not a connector (GET /api/servertypes)")
    })?;
    let created = api
        .hub
        .embed
        .create_connection(&sub, server, &form, api.outbound()?, host)
        .await?;
    let body = match &created.oauth_url {
        Some(url) => json!({ "id": created.connection.id, "oauth_url": url }),
        None => wire::server(&created.connection),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/servers[?limit=&after=]`: `{"servers": [...], "next"}`.
async fn list_servers(
    State(api): State<EmbedApi>,
    EmbedAuth(sub): EmbedAuth<SubAccount>,
    Query(params): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let page = api
        .hub
        .embed
        .list_connections(&sub, params.limit()?, params.after()?)
        .await?;
    let items: Vec<Value> = page.items.iter().map(wire::server).collect();
    Ok(Json(json!({ "servers": items, "next": page.next })))
}

async fn get_server(
    State(api): State<EmbedApi>,
    EmbedAuth(sub): EmbedAuth<SubAccount>,
    Path(IdParam { id }): Path<IdParam>,
) -> Result<Json<Value>, ApiError> {
    let connection = api.hub.embed.connection(&sub, parse_id(&id, "id")?).await?;
    Ok(Json(wire::server(&connection)))
}

async fn server_logs(
    State(api): State<EmbedApi>,
    tenant: TenantToken,
    Path(IdParam { id }): Path<IdParam>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "id")?;
    let account = tenant.account_id;
    let (_, logs) = tenant
        .beside(api.hub.embed.connection_logs(account, id))
        .await?;
    let items: Vec<Value> = logs.iter().map(wire::log_line).collect();
    Ok(Json(json!({ "id": id, "logs": items })))
}

/// `DELETE /api/server/{id}`: the connection, its sealed credentials and its log; the
/// token's check and what is deleted are read together.
async fn delete_server(
    State(api): State<EmbedApi>,
    tenant: TenantToken,
    Path(IdParam { id }): Path<IdParam>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "id")?;
    let account = tenant.account_id;
    let (_, doomed) = tenant
        .beside(api.hub.embed.connection_with_log(account, id))
        .await?;
    api.hub.embed.delete_connection(doomed).await?;
    Ok(Json(json!({ "id": id, "deleted": true })))
}

/// `GET /api/oauth/callback?code=&state=` (or `?error=&state=`): where the provider
/// sends the end-customer's browser; a page a person reads, never JSON.
async fn oauth_callback(
    State(api): State<EmbedApi>,
    params: Result<
        axum::extract::Query<std::collections::HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Response {
    let page = |status: StatusCode, ok: bool, message: &str| {
        let mut response = (status, Html(wire::callback_page(ok, message))).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        response
    };
    let Ok(axum::extract::Query(params)) = params else {
        return page(StatusCode::BAD_REQUEST, false, "The link is malformed.");
    };
    let Ok(outbound) = api.outbound() else {
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            false,
            "The connection could not be completed; please try again later.",
        );
    };
    let result = api
        .hub
        .embed
        .complete_oauth(
            params.get("state").map(String::as_str).unwrap_or_default(),
            params.get("code").map(String::as_str),
            params.get("error").map(String::as_str),
            outbound,
        )
        .await;
    match result {
        Ok(connection)
            if connection.status == shared::embed::connections::ConnectionStatus::Connected =>
        {
            page(StatusCode::OK, true, "Your account is connected.")
        }
        Ok(connection) => page(
            StatusCode::OK,
            false,
            connection
                .status_reason
                .as_deref()
                .unwrap_or("The connection could not be completed."),
        ),
        Err(shared::embed::EmbedError::OAuthFlow(why)) => {
            page(StatusCode::BAD_REQUEST, false, &why)
        }
        Err(e) => {
            tracing::error!(error = %e, "the OAuth2 callback failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                false,
                "The connection could not be completed; please try again later.",
            )
        }
    }
}

/// `POST /table` and `POST /interface`: not built yet (501, documented).
async fn not_yet(
    EmbedAuth(_sub): EmbedAuth<SubAccount>,
    request_path: axum::http::Uri,
) -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not_implemented",
        format!(
            "{} (query tables and scheduled scripts) is not available yet",
            request_path.path()
        ),
    )
}
