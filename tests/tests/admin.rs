//! SSO links into the admin page (signed-payload contract, step 4), end to end through
//! the stand-in over HTTP: single-use links, users unique by partner and email, the
//! session cookie's flags, the welcome email (through the emulator's SES), the page's
//! content, sign-out with CSRF, and HTML error pages for every bad link.

use hub_tests::{
    PARTNER_A_KEY, PARTNER_A_PUB, PARTNER_B_KEY, PARTNER_B_PUB, TestHub, TestPartner, shop_claims,
    sign_rs512,
};
use serde_json::{Value, json};

fn link(hub: &TestHub, partner: &TestPartner, shop: &str, email: &str, lifetime: i64) -> String {
    let claims =
        json!({"shop": shop, "user": {"firstName": "Ana", "lastName": "Ionescu", "email": email}});
    let jwt = sign_rs512(partner.private_key, &claims, lifetime);
    hub.url(&format!(
        "/api/admin/users/partnerSignin/{}/{jwt}",
        partner.token
    ))
}

struct Answer {
    status: u16,
    cookie: Option<String>,
    location: Option<String>,
    content_type: String,
    body: String,
}

async fn get(client: &reqwest::Client, url: &str, cookie: Option<&str>) -> Answer {
    let mut request = client.get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    answer(request.send().await.unwrap()).await
}

async fn answer(response: reqwest::Response) -> Answer {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (cookie, location) = (header("set-cookie"), header("location"));
    let content_type = header("content-type").unwrap_or_default();
    Answer {
        status: response.status().as_u16(),
        cookie,
        location,
        content_type,
        body: response.text().await.unwrap(),
    }
}

/// `hub_session=<token>` from a Set-Cookie header.
fn session_cookie(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn sso_links_sign_in_once_and_the_page_shows_only_the_partners_shops() {
    let hub = TestHub::start("admin").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let a = hub
        .register("Partner A", PARTNER_A_PUB, PARTNER_A_KEY)
        .await;
    let b = hub
        .register("Partner B", PARTNER_B_PUB, PARTNER_B_KEY)
        .await;
    assert_eq!(
        hub.provision(&a, &shop_claims("admin-shop.com")).await.0,
        201
    );
    assert_eq!(
        hub.provision(&b, &shop_claims("other-shop.com")).await.0,
        201
    );
    let account = shared::domain::AccountId::for_shop(
        &shared::domain::ShopDomain::parse("admin-shop.com").unwrap(),
    );
    let now = shared::clock::now();
    hub.stand_in
        .hub
        .billing
        .confirm(
            a.id,
            account,
            shared::billing::Confirmation {
                plan_ids: vec![1],
                start: now,
                end: now + time::Duration::days(30),
                trial_days: None,
                dynamic_price_cap_usd: None,
                fixed_price_cap_usd: None,
                claims_hash: "h".into(),
            },
        )
        .await
        .unwrap();

    // A's link: signed in, cookie flags as the contract's page needs.
    let url = link(&hub, &a, "admin-shop.com", "Owner@Shop.com", 300);
    let signed_in = get(&client, &url, None).await;
    assert_eq!(
        (signed_in.status, signed_in.location.as_deref()),
        (302, Some("/admin")),
        "{}",
        signed_in.body
    );
    let set_cookie = signed_in.cookie.expect("session cookie");
    for flag in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    let cookie = session_cookie(&set_cookie);

    // The page: the shop, its state and plans.
    let page = get(&client, &hub.url("/admin"), Some(&cookie)).await;
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));
    for shown in ["admin-shop.com", "running", "AI Hub", "Owner@Shop.com"] {
        assert!(page.body.contains(shown), "{shown} missing: {}", page.body);
    }
    assert!(!page.body.contains("other-shop.com"));

    // The same link again: refused, with a page a person can read, and no session.
    let replayed = get(&client, &url, None).await;
    assert_eq!(replayed.status, 410);
    assert!(replayed.content_type.starts_with("text/html"));
    assert!(replayed.body.contains("already used"));
    assert!(replayed.cookie.is_none());

    // The welcome email went through SES (the emulator's), with the confirmation link.
    let emails: Value = reqwest::get(hub.url("/_local/emails"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let welcome: Vec<&Value> = emails
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["to"][0] == "Owner@Shop.com")
        .collect();
    assert_eq!(welcome.len(), 1, "{emails}");
    assert!(
        welcome[0]["body"]
            .as_str()
            .unwrap()
            .contains("/admin/confirm/cf_")
    );

    // Bad links: an HTML page, no session.
    let mut expired_claims = json!({"shop": "admin-shop.com", "user": {"email": "x@shop.com"}});
    let t = shared::clock::now().unix_timestamp();
    expired_claims["iat"] = json!(t - 1000);
    expired_claims["exp"] = json!(t - 700);
    let expired = hub_tests::sign_raw(
        jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS512),
        PARTNER_A_KEY,
        &expired_claims,
    );
    let bad_links = [
        (
            link(&hub, &a, "admin-shop.com", "x@shop.com", 3600),
            401,
            "lives longer than the link lifetime",
        ),
        (
            hub.url(&format!(
                "/api/admin/users/partnerSignin/{}/{expired}",
                a.token
            )),
            401,
            "expired",
        ),
        (
            link(&hub, &a, "other-shop.com", "x@shop.com", 300),
            404,
            "another partner's shop",
        ),
        (
            hub.url(&format!(
                "/api/admin/users/partnerSignin/{}/{}",
                b.token,
                url.rsplit('/').next().unwrap()
            )),
            401,
            "signed by another partner",
        ),
        (
            hub.url(&format!(
                "/api/admin/users/partnerSignin/pt_nope/{}",
                url.rsplit('/').next().unwrap()
            )),
            401,
            "unknown partner token",
        ),
        (
            link(&hub, &a, "admin-shop.com", "not-an-email", 300),
            400,
            "bad email",
        ),
    ];
    for (bad, status, why) in bad_links {
        let answer = get(&client, &bad, None).await;
        assert_eq!(answer.status, status, "{why}: {}", answer.body);
        assert!(answer.cookie.is_none(), "{why}");
        assert!(
            answer.content_type.starts_with("text/html"),
            "{why}: {}",
            answer.content_type
        );
    }

    // The same email at partner B: another user, who sees only B's shop.
    let b_in = get(
        &client,
        &link(&hub, &b, "other-shop.com", "owner@shop.com", 300),
        None,
    )
    .await;
    assert_eq!(b_in.status, 302);
    let b_page = get(
        &client,
        &hub.url("/admin"),
        Some(&session_cookie(&b_in.cookie.unwrap())),
    )
    .await;
    assert!(b_page.body.contains("other-shop.com"));
    assert!(!b_page.body.contains("admin-shop.com"));

    // Sign out: the form's CSRF token is required.
    let without = answer(
        client
            .post(hub.url("/admin/logout"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("csrf=guess")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(without.status, 403);
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let out = answer(
        client
            .post(hub.url("/admin/logout"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(out.status, 200);
    assert!(out.cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(
        get(&client, &hub.url("/admin"), Some(&cookie)).await.status,
        401
    );
    hub.stop().await;
}
