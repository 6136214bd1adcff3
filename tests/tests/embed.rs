//! The embed API (contract `embed-api.txt`) end to end through the stand-in: a partner
//! provisions sub-accounts and gets tenant tokens; with a tenant token, connections are
//! added from the connector catalog with API keys and passwords, or through the OAuth2
//! flow the end-customer completes in a browser (here an HTTP client that follows the
//! redirects: the fake provider's consent page sends it to the hub's callback). Then the
//! refusals: every token that must not work (another partner's or tenant's, expired,
//! revoked, `alg: none`, HS256 signed with the public key, an unknown `kid`), with
//! nothing written; CORS for registered origins only; deletion.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hub_tests::{
    PARTNER_A_KEY, PARTNER_A_PUB, PARTNER_B_KEY, PARTNER_B_PUB, TestHub, TestPartner,
    assert_documented, sample,
};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use shared::embed::{Embed, Subject};

const PROVIDER_TOKEN_HOST: &str = "api.hubapi.com";
const HUBSPOT: u64 = 456;
const PIPEDRIVE: u64 = 123;
const POSTGRES: u64 = 345;

fn embed(hub: &TestHub) -> &Embed {
    &hub.stand_in
        .embed_hub
        .as_ref()
        .expect("the stand-in runs the embed API")
        .embed
}

/// A partner and its embed partner token.
async fn partner(
    hub: &TestHub,
    name: &str,
    public: &str,
    private: &'static str,
) -> (TestPartner, String) {
    let partner = hub.register(name, public, private).await;
    let token = embed(hub)
        .issue_partner_token(partner.id)
        .await
        .unwrap()
        .token;
    (partner, format!("JWT {token}"))
}

/// Calls the embed API (documented answers only): status, JSON body, headers.
async fn call(
    hub: &TestHub,
    auth: Option<&str>,
    method: &str,
    path: &str,
    documented_as: &str,
    body: Option<Value>,
) -> (u16, Value, HeaderMap) {
    let mut request = hub.http.request(method.parse().unwrap(), hub.url(path));
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the hub answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let json: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: {status} {text}"));
    assert_documented(method, documented_as, status, Some(&json));
    (status, json, headers)
}

/// The contract's example body (`events/embed/subaccount.json`).
fn wood() -> Value {
    sample("embed/subaccount.json")
}

async fn tenant(hub: &TestHub, partner_auth: &str, body: Value) -> (u64, String) {
    let (status, created, _) = call(
        hub,
        Some(partner_auth),
        "POST",
        "/api/subaccount",
        "/api/subaccount",
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_u64().unwrap();
    let (status, token, _) = call(
        hub,
        Some(partner_auth),
        "GET",
        &format!("/api/subaccount/{id}/token"),
        "/api/subaccount/{id}/token",
        None,
    )
    .await;
    assert_eq!(status, 200, "{token}");
    (id, format!("JWT {}", token["token"].as_str().unwrap()))
}

fn claims_of(token: &str) -> Value {
    let payload = token.trim_start_matches("JWT ").split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sub_accounts_are_created_once_listed_changed_and_tokened() {
    let hub = TestHub::start("embed-subaccounts").await;
    let (_a, auth) = partner(&hub, "Partner A", PARTNER_A_PUB, PARTNER_A_KEY).await;

    // The contract's body: 201; the same again: 200 with the same id; other details: 409.
    let (status, first, _) = call(
        &hub,
        Some(&auth),
        "POST",
        "/api/subaccount",
        "/api/subaccount",
        Some(wood()),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["external_id"], "wood_123");
    assert_eq!(first["email"], "john@woodsolutions.com");
    let id = first["id"].as_u64().unwrap();
    let (status, again, _) = call(
        &hub,
        Some(&auth),
        "POST",
        "/api/subaccount",
        "/api/subaccount",
        Some(wood()),
    )
    .await;
    assert_eq!((status, again["id"].as_u64()), (200, Some(id)));
    let mut other = wood();
    other["first_name"] = "Jane".into();
    let (status, taken, _) = call(
        &hub,
        Some(&auth),
        "POST",
        "/api/subaccount",
        "/api/subaccount",
        Some(other),
    )
    .await;
    assert_eq!(status, 409, "{taken}");
    assert_eq!(taken["error"]["field"], "external_id");

    // Read it by id and by external id; list in pages.
    let (status, got, _) = call(
        &hub,
        Some(&auth),
        "GET",
        &format!("/api/subaccount/{id}"),
        "/api/subaccount/{id}",
        None,
    )
    .await;
    assert_eq!((status, &got), (200, &first));
    let (_, by_ext, _) = call(
        &hub,
        Some(&auth),
        "GET",
        "/api/subaccount?external_id=wood_123",
        "/api/subaccount",
        None,
    )
    .await;
    assert_eq!(by_ext["subaccounts"][0]["id"].as_u64(), Some(id));
    for n in 0..3 {
        let body = json!({"external_id": format!("page_{n}"), "company_name": format!("Page {n}")});
        let (status, _, _) = call(
            &hub,
            Some(&auth),
            "POST",
            "/api/subaccount",
            "/api/subaccount",
            Some(body),
        )
        .await;
        assert_eq!(status, 201);
    }
    let mut seen = Vec::new();
    let mut path = "/api/subaccount?limit=2".to_owned();
    loop {
        let (status, page, _) =
            call(&hub, Some(&auth), "GET", &path, "/api/subaccount", None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["subaccounts"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|s| s["external_id"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_u64() {
            Some(next) => path = format!("/api/subaccount?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["wood_123", "page_0", "page_1", "page_2"]);

    // Changed by id, and by external id (as the contract writes PUT /api/subaccount).
    let (status, changed, _) = call(
        &hub,
        Some(&auth),
        "PUT",
        &format!("/api/subaccount/{id}"),
        "/api/subaccount/{id}",
        Some(json!({"first_name": "Jane", "company_name": null})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (
            changed["first_name"].as_str(),
            changed["company_name"].is_null()
        ),
        (Some("Jane"), true)
    );
    assert_eq!(changed["last_name"], "Doe");
    let (status, changed, _) = call(
        &hub,
        Some(&auth),
        "PUT",
        "/api/subaccount",
        "/api/subaccount",
        Some(json!({"external_id": "wood_123", "language": "nl"})),
    )
    .await;
    assert_eq!((status, changed["language"].as_str()), (200, Some("nl")));
    let (status, refused, _) = call(
        &hub,
        Some(&auth),
        "PUT",
        &format!("/api/subaccount/{id}"),
        "/api/subaccount/{id}",
        Some(json!({"external_id": "wood_999"})),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (422, Some("external_id"))
    );

    // Tokens: short-lived by default, non-expiring with expire=false, by id or external id.
    let (status, short, _) = call(
        &hub,
        Some(&auth),
        "GET",
        &format!("/api/subaccount/{id}/token"),
        "/api/subaccount/{id}/token",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(short["expires_in"], 3600);
    let claims = claims_of(short["token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    let (status, forever, _) = call(
        &hub,
        Some(&auth),
        "GET",
        "/api/subaccount/token?external_id=wood_123&expire=false",
        "/api/subaccount/token",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(forever["expires_at"].is_null());
    assert!(
        claims_of(forever["token"].as_str().unwrap())
            .get("exp")
            .is_none()
    );
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(
                forever["token"]
                    .as_str()
                    .unwrap()
                    .split('.')
                    .next()
                    .unwrap(),
            )
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str().map(str::len)),
        (Some("ES256"), Some(16))
    );
    // The tenant token works on the tenant's routes.
    let tenant_auth = format!("JWT {}", forever["token"].as_str().unwrap());
    let (status, servers, _) = call(
        &hub,
        Some(&tenant_auth),
        "GET",
        "/api/servers",
        "/api/servers",
        None,
    )
    .await;
    assert_eq!(
        (status, servers["servers"].as_array().map(Vec::len)),
        (200, Some(0))
    );

    // Bad bodies: 4xx naming the field, nothing created.
    for (body, field) in [
        (json!({"first_name": "John"}), "external_id"),
        (
            json!({"external_id": "x", "email": "not-an-email"}),
            "email",
        ),
        (
            json!({"external_id": "x", "language": "english"}),
            "language",
        ),
        (json!({"external_id": "x", "nickname": "j"}), "nickname"),
        (json!({"external_id": ""}), "external_id"),
        (json!({"external_id": 12}), "external_id"),
    ] {
        let (status, err, _) = call(
            &hub,
            Some(&auth),
            "POST",
            "/api/subaccount",
            "/api/subaccount",
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{body}"
        );
    }
    let (_, all, _) = call(
        &hub,
        Some(&auth),
        "GET",
        "/api/subaccount",
        "/api/subaccount",
        None,
    )
    .await;
    assert_eq!(all["subaccounts"].as_array().unwrap().len(), 4);
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_that_must_not_work_get_401_and_change_nothing() {
    let hub = TestHub::start("embed-tokens").await;
    let (a, auth_a) = partner(&hub, "Partner A", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let (_b, auth_b) = partner(&hub, "Partner B", PARTNER_B_PUB, PARTNER_B_KEY).await;
    let (id, tenant_a) = tenant(&hub, &auth_a, wood()).await;
    let (other_id, tenant_other) = tenant(&hub, &auth_a, json!({"external_id": "other"})).await;
    let (status, server, _) = call(
        &hub,
        Some(&tenant_other),
        "POST",
        "/api/servers",
        "/api/servers",
        Some(json!({"servertype_id": PIPEDRIVE, "api_token": "pd-secret"})),
    )
    .await;
    assert_eq!(status, 201, "{server}");
    let other_server = server["id"].as_u64().unwrap();
    let before = hub.settled_table_keys().await;

    // Another partner's token does not reach A's sub-account: 404, as for none.
    let (status, _, _) = call(
        &hub,
        Some(&auth_b),
        "GET",
        &format!("/api/subaccount/{id}"),
        "/api/subaccount/{id}",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = call(
        &hub,
        Some(&auth_b),
        "DELETE",
        &format!("/api/subaccount/{id}"),
        "/api/subaccount/{id}",
        None,
    )
    .await;
    assert_eq!(status, 404);
    // A tenant reaches only its own connections.
    let (status, _, _) = call(
        &hub,
        Some(&tenant_a),
        "GET",
        &format!("/api/server/{other_server}"),
        "/api/server/{id}",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = call(
        &hub,
        Some(&tenant_a),
        "DELETE",
        &format!("/api/server/{other_server}"),
        "/api/server/{id}",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = call(
        &hub,
        Some(&tenant_a),
        "GET",
        &format!("/api/server/{other_server}/logs"),
        "/api/server/{id}/logs",
        None,
    )
    .await;
    assert_eq!(status, 404);
    // Neither kind works on the other's routes.
    let (status, err, _) = call(
        &hub,
        Some(&tenant_a),
        "GET",
        "/api/subaccount",
        "/api/subaccount",
        None,
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("wrong_token"))
    );
    let (status, err, _) = call(
        &hub,
        Some(&auth_a),
        "GET",
        "/api/servers",
        "/api/servers",
        None,
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("wrong_token"))
    );

    // Forged and stale tokens.
    let keys = &embed(&hub).keys;
    let sub = embed(&hub).sub_account(a.id, id).await.unwrap().unwrap();
    let long_ago = shared::clock::now() - time::Duration::hours(3);
    let expired = keys
        .issue(
            Subject::SubAccount {
                partner: a.id,
                number: id,
            },
            sub.token_version,
            Some(Duration::from_secs(600)),
            long_ago,
        )
        .await
        .unwrap()
        .token;
    let parts: Vec<&str> = tenant_a.trim_start_matches("JWT ").split('.').collect();
    let header = |h: Value| URL_SAFE_NO_PAD.encode(h.to_string());
    let alg_none = format!(
        "{}.{}.",
        header(json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    let public_der = {
        let out = hub.stand_in.embed_hub.as_ref().unwrap();
        let kms = aws_sdk_kms::Client::new(&hub.stand_in.sdk);
        let key_id = &out.config.embed_signing_key_ids[0];
        kms.get_public_key()
            .key_id(key_id)
            .send()
            .await
            .unwrap()
            .public_key
            .unwrap()
            .into_inner()
    };
    let hs256 = {
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = claims_header_kid(parts[0]);
        jsonwebtoken::encode(
            &h,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&public_der),
        )
        .unwrap()
    };
    let wrong_kid = format!(
        "{}.{}.{}",
        header(json!({"alg": "ES256", "typ": "JWT", "kid": "0000000000000000"})),
        parts[1],
        parts[2]
    );
    let tampered = {
        let mut claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["sa"] = other_id.into();
        claims["sub"] = format!("subaccount:{other_id}").into();
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            parts[2]
        )
    };
    // Revoked: every token issued before the revocation stops at once.
    let (status, revoked, _) = call(
        &hub,
        Some(&auth_a),
        "DELETE",
        &format!("/api/subaccount/{other_id}/token"),
        "/api/subaccount/{id}/token",
        None,
    )
    .await;
    assert_eq!((status, revoked["revoked"].as_bool()), (200, Some(true)));
    for (what, token) in [
        ("expired", format!("JWT {expired}")),
        ("alg none", format!("JWT {alg_none}")),
        ("HS256 with the public key", format!("JWT {hs256}")),
        ("unknown kid", format!("JWT {wrong_kid}")),
        ("tampered claims", format!("JWT {tampered}")),
        ("revoked", tenant_other.clone()),
        ("garbage", "JWT abc.def.ghi".to_owned()),
        ("wrong scheme", tenant_a.replace("JWT ", "Basic ")),
    ] {
        let (status, err, _) = call(
            &hub,
            Some(&token),
            "GET",
            "/api/servers",
            "/api/servers",
            None,
        )
        .await;
        assert_eq!(status, 401, "{what}: {err}");
        let (status, _, _) = call(
            &hub,
            Some(&token),
            "POST",
            "/api/servers",
            "/api/servers",
            Some(json!({"servertype_id": PIPEDRIVE, "api_token": "x"})),
        )
        .await;
        assert_eq!(status, 401, "{what}");
    }
    let (status, _, _) = call(
        &hub,
        None,
        "GET",
        "/api/servertypes",
        "/api/servertypes",
        None,
    )
    .await;
    assert_eq!(status, 401);
    // A revoked partner token too.
    embed(&hub).revoke_partner_tokens(a.id).await.unwrap();
    let (status, _, _) = call(
        &hub,
        Some(&auth_a),
        "GET",
        "/api/subaccount",
        "/api/subaccount",
        None,
    )
    .await;
    assert_eq!(status, 401);

    // Nothing was written but the revocations (the sub-account's and the partner's
    // records change in place; their keys stay) and failure counters.
    let after = hub.settled_table_keys().await;
    let added: Vec<&String> = after
        .difference(&before)
        .filter(|k| !k.starts_with("THROTTLE#"))
        .collect();
    assert!(added.is_empty(), "{added:?}");
    assert_eq!(before.difference(&after).count(), 0);
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

/// The `kid` of a token's header.
fn claims_header_kid(header: &str) -> Option<String> {
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_with_keys_and_passwords_are_sealed_listed_logged_and_deleted() {
    let hub = TestHub::start("embed-servers").await;
    let (_a, auth) = partner(&hub, "Partner A", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let (_, tenant_auth) = tenant(&hub, &auth, wood()).await;

    // The catalog: each connector's connect form.
    let (status, catalog, _) = call(
        &hub,
        Some(&auth),
        "GET",
        "/api/servertypes",
        "/api/servertypes",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let types = catalog["servertypes"].as_array().unwrap();
    let pipedrive = types.iter().find(|t| t["id"] == PIPEDRIVE).unwrap();
    assert_eq!(pipedrive["auth"], "api_key");
    assert_eq!(pipedrive["form"][0]["secret"], true);
    let hubspot = types.iter().find(|t| t["id"] == HUBSPOT).unwrap();
    assert_eq!(hubspot["auth"], "oauth2");
    assert!(
        hubspot["oauth2"]["authorize_url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    assert!(types.iter().any(|t| t["auth"] == "login_password"));

    // Login and password: the password sealed, never returned.
    let (status, created, _) = call(
        &hub,
        Some(&tenant_auth),
        "POST",
        "/api/servers",
        "/api/servers",
        Some(json!({
            "servertype_id": POSTGRES, "host": "db.example.com", "port": 5432, "database": "crm",
            "login": "reader", "password": "s3cr3t-pw"
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "connected");
    assert_eq!(created["fields"]["login"], "reader");
    assert_eq!(created["secret_fields"], json!(["password"]));
    assert!(!created.to_string().contains("s3cr3t-pw"));
    let id = created["id"].as_u64().unwrap();
    // The table keeps it sealed (KMS), not in the clear.
    let items = hub.stand_in.hub.table.scan_all().await.unwrap();
    assert!(
        !format!("{items:?}").contains("s3cr3t-pw"),
        "a secret is stored in the clear"
    );

    let (status, api_key, _) = call(
        &hub,
        Some(&tenant_auth),
        "POST",
        "/api/servers",
        "/api/servers",
        Some(
            json!({"servertype_id": PIPEDRIVE, "api_token": "pd-token", "company_domain": "wood"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{api_key}");

    // Listed (paged), read, logged.
    let (_, page, _) = call(
        &hub,
        Some(&tenant_auth),
        "GET",
        "/api/servers?limit=1",
        "/api/servers",
        None,
    )
    .await;
    assert_eq!(page["servers"].as_array().unwrap().len(), 1);
    let next = page["next"].as_u64().unwrap();
    let (_, page2, _) = call(
        &hub,
        Some(&tenant_auth),
        "GET",
        &format!("/api/servers?limit=1&after={next}"),
        "/api/servers",
        None,
    )
    .await;
    assert_eq!(page2["servers"][0]["id"], api_key["id"]);
    let (status, got, _) = call(
        &hub,
        Some(&tenant_auth),
        "GET",
        &format!("/api/server/{id}"),
        "/api/server/{id}",
        None,
    )
    .await;
    assert_eq!((status, got["status"].as_str()), (200, Some("connected")));
    let (status, logs, _) = call(
        &hub,
        Some(&tenant_auth),
        "GET",
        &format!("/api/server/{id}/logs"),
        "/api/server/{id}/logs",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(logs["logs"][0]["event"], "created");
    assert!(!logs.to_string().contains("s3cr3t-pw"));

    // Bad forms: 422 naming the field, nothing created.
    for (body, field) in [
        (json!({"host": "h"}), "servertype_id"),
        (json!({"servertype_id": 999}), "servertype_id"),
        (json!({"servertype_id": "345"}), "servertype_id"),
        (
            json!({"servertype_id": POSTGRES, "host": "h", "database": "d", "login": "u"}),
            "password",
        ),
        (
            json!({"servertype_id": POSTGRES, "host": "h", "database": "d", "login": "u", "password": "p", "port": "5432"}),
            "port",
        ),
        (
            json!({"servertype_id": POSTGRES, "host": "h", "database": "d", "login": "u", "password": "p", "colour": "red"}),
            "colour",
        ),
        (
            json!({"servertype_id": 234, "url": "http://odoo.example.com", "database": "d", "login": "u", "password": "p"}),
            "url",
        ),
        (
            json!({"servertype_id": PIPEDRIVE, "api_token": ""}),
            "api_token",
        ),
    ] {
        let (status, err, _) = call(
            &hub,
            Some(&tenant_auth),
            "POST",
            "/api/servers",
            "/api/servers",
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{body}: {err}"
        );
    }
    let (_, all, _) = call(
        &hub,
        Some(&tenant_auth),
        "GET",
        "/api/servers",
        "/api/servers",
        None,
    )
    .await;
    assert_eq!(all["servers"].as_array().unwrap().len(), 2);

    // Deleted with its log.
    let (status, _, _) = call(
        &hub,
        Some(&tenant_auth),
        "DELETE",
        &format!("/api/server/{id}"),
        "/api/server/{id}",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = call(
        &hub,
        Some(&tenant_auth),
        "GET",
        &format!("/api/server/{id}"),
        "/api/server/{id}",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let keys = hub.table_keys().await;
    assert!(
        !keys
            .iter()
            .any(|k| k.contains(&format!("CONNECTION_LOG#{id:012}"))),
        "{keys:?}"
    );

    // Not built yet: 501, clear.
    for path in ["/table", "/interface"] {
        let (status, err, _) = call(
            &hub,
            Some(&tenant_auth),
            "POST",
            path,
            path,
            Some(json!({"name": "x"})),
        )
        .await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (501, Some("not_implemented"))
        );
    }
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oauth2_connection_is_authorized_in_the_browser_refreshed_and_needs_reauth_when_refused()
{
    let hub = TestHub::start("embed-oauth").await;
    let (_a, auth) = partner(&hub, "Partner A", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let (_, tenant_auth) = tenant(&hub, &auth, wood()).await;

    let (status, started, _) = call(
        &hub,
        Some(&tenant_auth),
        "POST",
        "/api/servers",
        "/api/servers",
        Some(json!({"servertype_id": HUBSPOT})),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_u64().unwrap();
    let oauth_url = started["oauth_url"].as_str().unwrap().to_owned();
    let (_, pending, _) = call(
        &hub,
        Some(&tenant_auth),
        "GET",
        &format!("/api/server/{id}"),
        "/api/server/{id}",
        None,
    )
    .await;
    assert_eq!(pending["status"], "pending");
    // The provider's authorize URL with state and an S256 challenge (through the
    // stand-in's recorder, which plays the provider).
    let url = reqwest::Url::parse(&oauth_url).unwrap();
    assert!(
        url.path().ends_with("/app.hubspot.com/oauth/authorize"),
        "{url}"
    );
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["redirect_uri"], hub.url("/api/oauth/callback"));
    assert_eq!(query["client_id"], hub_local::demo::DEMO_OAUTH_CLIENT_ID);

    // The end-customer's browser: the consent page redirects to the hub's callback.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .unwrap();
    let landed = browser.get(&oauth_url).send().await.unwrap();
    let callback_url = landed.url().clone();
    assert_eq!(callback_url.path(), "/api/oauth/callback");
    assert_eq!(landed.status(), 200);
    assert!(
        landed.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(landed.text().await.unwrap().contains("Connected"));
    let (_, connected, _) = call(
        &hub,
        Some(&tenant_auth),
        "GET",
        &format!("/api/server/{id}"),
        "/api/server/{id}",
        None,
    )
    .await;
    assert_eq!(connected["status"], "connected", "{connected}");
    assert!(connected["token_expires_at"].is_string());
    assert!(
        !connected.to_string().contains("at_"),
        "an access token is shown: {connected}"
    );

    // The code exchange the provider received: PKCE verifier, the same redirect_uri,
    // client credentials as HTTP Basic.
    let calls = hub.outbound_calls(PROVIDER_TOKEN_HOST).await;
    let exchange = calls.last().unwrap();
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(exchange["body"].as_str().unwrap().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(form["grant_type"], "authorization_code");
    assert!(form["code_verifier"].len() >= 43);
    assert_eq!(form["redirect_uri"], hub.url("/api/oauth/callback"));
    assert!(
        exchange["headers"]["authorization"]
            .as_str()
            .unwrap()
            .starts_with("Basic ")
    );

    // The same callback again (a reused state) is refused: an HTML page, 400.
    let replay = browser.get(callback_url.as_str()).send().await.unwrap();
    assert_eq!(replay.status(), 400);
    assert!(replay.text().await.unwrap().contains("already used"));
    let forged = browser
        .get(hub.url("/api/oauth/callback?code=x&state=st_forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);

    // Refreshed before it expires: the schedule as of 25 minutes later.
    let outbound = connection_refresh::outbound(hub.stand_in.embed_hub.as_ref().unwrap()).unwrap();
    let embed_hub = hub.stand_in.embed_hub.clone().unwrap();
    let later = shared::clock::now() + time::Duration::minutes(25);
    let report = connection_refresh::handle_at(&embed_hub, &outbound, later)
        .await
        .unwrap();
    assert_eq!((report.due, report.refreshed), (1, 1), "{report:?}");
    let refresh = hub
        .outbound_calls(PROVIDER_TOKEN_HOST)
        .await
        .last()
        .cloned()
        .unwrap();
    assert!(
        refresh["body"]
            .as_str()
            .unwrap()
            .contains("grant_type=refresh_token")
    );
    // Not due again right away.
    let report = connection_refresh::handle_at(&embed_hub, &outbound, later)
        .await
        .unwrap();
    assert_eq!(report.due, 0);

    // The provider down: retried later, still connected.
    let much_later = later + time::Duration::minutes(25);
    hub.script_outbound(json!({"host": PROVIDER_TOKEN_HOST, "status": 503}))
        .await;
    let report = connection_refresh::handle_at(&embed_hub, &outbound, much_later)
        .await
        .unwrap();
    assert_eq!(report.retried, 1, "{report:?}");
    let (_, still, _) = call(
        &hub,
        Some(&tenant_auth),
        "GET",
        &format!("/api/server/{id}"),
        "/api/server/{id}",
        None,
    )
    .await;
    assert_eq!(still["status"], "connected");
    // The provider refuses the refresh token: needs_reauth, with the reason logged.
    hub.script_outbound(json!({"host": PROVIDER_TOKEN_HOST, "status": 400,
        "body": {"error": "invalid_grant", "error_description": "refresh token revoked"}}))
        .await;
    let report = connection_refresh::handle_at(
        &embed_hub,
        &outbound,
        much_later + time::Duration::minutes(10),
    )
    .await
    .unwrap();
    assert_eq!(report.needs_reauth, 1, "{report:?}");
    let (_, reauth, _) = call(
        &hub,
        Some(&tenant_auth),
        "GET",
        &format!("/api/server/{id}"),
        "/api/server/{id}",
        None,
    )
    .await;
    assert_eq!(reauth["status"], "needs_reauth");
    assert!(
        reauth["status_reason"]
            .as_str()
            .unwrap()
            .contains("invalid_grant")
    );
    let (_, logs, _) = call(
        &hub,
        Some(&tenant_auth),
        "GET",
        &format!("/api/server/{id}/logs"),
        "/api/server/{id}/logs",
        None,
    )
    .await;
    let events: Vec<&str> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "needs_reauth",
            "failed",
            "refreshed",
            "authorized",
            "created"
        ]
    );
    assert!(
        !logs.to_string().contains("rt_"),
        "a refresh token is logged"
    );

    // Refused consent: the connection is marked error.
    let (_, second, _) = call(
        &hub,
        Some(&tenant_auth),
        "POST",
        "/api/servers",
        "/api/servers",
        Some(json!({"servertype_id": HUBSPOT})),
    )
    .await;
    let state = reqwest::Url::parse(second["oauth_url"].as_str().unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let denied = browser
        .get(hub.url(&format!(
            "/api/oauth/callback?error=access_denied&state={state}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 200);
    assert!(denied.text().await.unwrap().contains("did not authorize"));
    let (_, errored, _) = call(
        &hub,
        Some(&tenant_auth),
        "GET",
        &format!("/api/server/{}", second["id"]),
        "/api/server/{id}",
        None,
    )
    .await;
    assert_eq!(errored["status"], "error");
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_answers_registered_origins_only() {
    let hub = TestHub::start("embed-cors").await;
    let (a, auth_a) = partner(&hub, "Partner A", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let (b, _auth_b) = partner(&hub, "Partner B", PARTNER_B_PUB, PARTNER_B_KEY).await;
    embed(&hub)
        .add_origin(a.id, "https://acme.com")
        .await
        .unwrap();
    embed(&hub)
        .add_origin(b.id, "https://other.example")
        .await
        .unwrap();
    assert!(
        embed(&hub)
            .add_origin(b.id, "https://acme.com")
            .await
            .is_err(),
        "one origin, one partner"
    );

    let preflight = |origin: &'static str| {
        hub.http
            .request(reqwest::Method::OPTIONS, hub.url("/api/subaccount"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let ok = preflight("https://acme.com").await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://acme.com"
    );
    assert!(
        ok.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("Authorization")
    );
    assert!(
        ok.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert_eq!(ok.headers()["vary"], "Origin");
    let refused = preflight("https://evil.example").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let get = |origin: &'static str| {
        hub.http
            .get(hub.url("/api/subaccount"))
            .header("authorization", &auth_a)
            .header("origin", origin)
            .send()
    };
    let own = get("https://acme.com").await.unwrap();
    assert_eq!(own.status(), 200);
    assert_eq!(
        own.headers()["access-control-allow-origin"],
        "https://acme.com"
    );
    assert_eq!(own.headers()["vary"], "Origin");
    // B's origin with A's token: no CORS headers (the browser keeps the answer from the page).
    let foreign = get("https://other.example").await.unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let unknown = get("https://evil.example").await.unwrap();
    assert!(
        unknown
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_sub_account_revokes_its_tokens_and_erases_its_data() {
    let hub = TestHub::start("embed-delete").await;
    let (a, auth) = partner(&hub, "Partner A", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let (id, tenant_auth) = tenant(&hub, &auth, wood()).await;
    let (status, _, _) = call(
        &hub,
        Some(&tenant_auth),
        "POST",
        "/api/servers",
        "/api/servers",
        Some(json!({"servertype_id": PIPEDRIVE, "api_token": "pd-secret"})),
    )
    .await;
    assert_eq!(status, 201);
    let account = shared::domain::AccountId::for_sub_account(a.id, id);

    let (status, deleted, _) = call(
        &hub,
        Some(&auth),
        "DELETE",
        "/api/subaccount?external_id=wood_123",
        "/api/subaccount",
        None,
    )
    .await;
    assert_eq!(
        (status, deleted["deleted"].as_bool(), deleted["id"].as_u64()),
        (200, Some(true), Some(id))
    );
    // At once: the tenant's token, its connections (unreachable at once, purged by the
    // consumer of account.deleted within seconds: the keys below are the settled ones).
    let (status, _, _) = call(
        &hub,
        Some(&tenant_auth),
        "GET",
        "/api/servers",
        "/api/servers",
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, _) = call(
        &hub,
        Some(&auth),
        "GET",
        &format!("/api/subaccount/{id}"),
        "/api/subaccount/{id}",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let keys = hub.settled_table_keys().await;
    let left: Vec<&String> = keys
        .iter()
        .filter(|k| k.contains(&account.to_string()) || k.contains("wood_123"))
        .filter(|k| !k.starts_with(&format!("TOMBSTONE#{account}")))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let items = hub.stand_in.hub.table.scan_all().await.unwrap();
    assert!(
        !format!("{items:?}").contains("john@woodsolutions.com"),
        "personal data kept"
    );
    // Deleting again answers the tombstone; the external id can be used anew.
    let (status, again, _) = call(
        &hub,
        Some(&auth),
        "DELETE",
        &format!("/api/subaccount/{id}"),
        "/api/subaccount/{id}",
        None,
    )
    .await;
    assert_eq!((status, again["deleted"].as_bool()), (200, Some(true)));
    let (status, renewed, _) = call(
        &hub,
        Some(&auth),
        "POST",
        "/api/subaccount",
        "/api/subaccount",
        Some(wood()),
    )
    .await;
    assert_eq!(status, 201);
    assert_ne!(renewed["id"].as_u64(), Some(id));
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_samples_match_their_schemas_and_are_accepted_as_written() {
    let validate = |sample_path: &str, schema_path: &str| {
        let schema = sample(schema_path);
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        let body = sample(sample_path);
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{sample_path}: {errors:?}");
        body
    };
    let hub = TestHub::start("embed-samples").await;
    let (_a, auth) = partner(&hub, "Partner A", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let body = validate("embed/subaccount.json", "embed/subaccount.schema.json");
    let (_, tenant_auth) = tenant(&hub, &auth, body).await;
    for (path, expect_oauth) in [
        ("embed/server-api-key.json", false),
        ("embed/server-login-password.json", false),
        ("embed/server-oauth2.json", true),
    ] {
        let body = validate(path, "embed/server.schema.json");
        let (status, created, _) = call(
            &hub,
            Some(&tenant_auth),
            "POST",
            "/api/servers",
            "/api/servers",
            Some(body),
        )
        .await;
        assert_eq!(status, 201, "{path}: {created}");
        assert_eq!(created.get("oauth_url").is_some(), expect_oauth, "{path}");
    }
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}
