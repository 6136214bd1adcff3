//! SSO links into the admin page (signed-payload contract, step 4), end to end through
//! the stand-in over HTTP: single-use links, users unique by partner and email, the
//! session cookie's flags, the welcome email (through the emulator's SES), the page's
//! content, sign-out with CSRF, and HTML error pages for every bad link.

use hub_tests::{
    PARTNER_A_KEY, PARTNER_A_PUB, PARTNER_B_KEY, PARTNER_B_PUB, TestHub, shop_claims, sso_link,
};
use serde_json::{Value, json};

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

/// The hidden CSRF field's value in a page's form.
fn hidden_csrf(body: &str) -> String {
    body.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form with a CSRF field")
        .to_owned()
}

async fn post_form(
    client: &reqwest::Client,
    url: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> Answer {
    let mut request = client.post(url).form(form);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    answer(request.send().await.unwrap()).await
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
    hub.confirm_plans(&a, "admin-shop.com", &[1]).await;

    // A's link: signed in, cookie flags as the contract's page needs.
    // Signed as the contract signs its payloads: expiresIn '1h'. Longer is refused.
    let too_long = get(
        &client,
        &sso_link(&hub, &a, "admin-shop.com", "Owner@Shop.com", 3601 + 60),
        None,
    )
    .await;
    assert_eq!(too_long.status, 401, "{}", too_long.body);
    assert!(too_long.cookie.is_none());
    let url = sso_link(&hub, &a, "admin-shop.com", "Owner@Shop.com", 3600);
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
    // Nor with whitespace or another spelling of the same signature: single use is by
    // the signature's bytes, not the link's text.
    let last = url.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = |c: char| alphabet.find(c).unwrap();
    let sibling = alphabet
        .chars()
        .find(|c| *c != last && index(*c) >> 2 == index(last) >> 2)
        .unwrap();
    for variant in [
        format!("{url}%20"),
        format!("{url}%0A"),
        format!("{url}%09"),
        format!("{url}%3D%3D"),
        format!("{}{sibling}", &url[..url.len() - 1]),
    ] {
        let again = get(&client, &variant, None).await;
        assert!(
            again.status == 410 || again.status == 401,
            "{variant}: {} {}",
            again.status,
            again.body
        );
        assert!(again.cookie.is_none(), "{variant} signed someone in");
    }

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
            sso_link(&hub, &a, "admin-shop.com", "x@shop.com", 2 * 3600),
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
            sso_link(&hub, &a, "other-shop.com", "x@shop.com", 300),
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
            sso_link(&hub, &a, "admin-shop.com", "not-an-email", 300),
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
        &sso_link(&hub, &b, "other-shop.com", "owner@shop.com", 300),
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
    let csrf = hidden_csrf(&page.body);
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
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_welcome_link_sets_a_password_that_signs_in_with_csrf_and_lockout() {
    let hub = TestHub::start("admin-passwords").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let a = hub
        .register("Partner A", PARTNER_A_PUB, PARTNER_A_KEY)
        .await;
    assert_eq!(hub.provision(&a, &shop_claims("pw-shop.com")).await.0, 201);
    let email = "pw@shop.com";
    assert_eq!(
        get(
            &client,
            &sso_link(&hub, &a, "pw-shop.com", email, 300),
            None
        )
        .await
        .status,
        302
    );
    let confirm_url = hub_tests::confirm_link(&hub, email).await;

    // The form: its CSRF token is a path-scoped cookie too (double submit).
    let form = get(&client, &confirm_url, None).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let set_cookie = form.cookie.expect("the form's CSRF cookie");
    for flag in [
        "hub_confirm_csrf=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/admin/confirm",
    ] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    let csrf = hidden_csrf(&form.body);
    let csrf_cookie = session_cookie(&set_cookie);
    let password = "correct horse battery";

    let refusals = [
        (
            None,
            csrf.as_str(),
            password,
            password,
            403,
            "no CSRF cookie",
        ),
        (
            Some(csrf_cookie.as_str()),
            "forged",
            password,
            password,
            403,
            "forged CSRF",
        ),
        (
            Some(csrf_cookie.as_str()),
            csrf.as_str(),
            "short",
            "short",
            422,
            "short password",
        ),
        (
            Some(csrf_cookie.as_str()),
            csrf.as_str(),
            password,
            "another horse battery",
            422,
            "passwords differ",
        ),
    ];
    for (cookie, sent_csrf, first, again, status, why) in refusals {
        let answer = post_form(
            &client,
            &confirm_url,
            cookie,
            &[("csrf", sent_csrf), ("password", first), ("repeat", again)],
        )
        .await;
        assert_eq!(answer.status, status, "{why}: {}", answer.body);
        assert!(answer.content_type.starts_with("text/html"), "{why}");
        assert!(
            answer.cookie.is_none_or(|c| !c.starts_with("hub_session=")),
            "{why}"
        );
    }
    let fields = [
        ("csrf", csrf.as_str()),
        ("password", password),
        ("repeat", password),
    ];
    let confirmed = post_form(&client, &confirm_url, Some(&csrf_cookie), &fields).await;
    assert_eq!(
        (confirmed.status, confirmed.location.as_deref()),
        (302, Some("/admin")),
        "{}",
        confirmed.body
    );
    let session = session_cookie(&confirmed.cookie.expect("a session"));
    let page = get(&client, &hub.url("/admin"), Some(&session)).await;
    assert!(page.body.contains("pw-shop.com"), "{}", page.body);
    // The confirmation link works once.
    let again = post_form(&client, &confirm_url, Some(&csrf_cookie), &fields).await;
    assert_eq!(again.status, 410, "{}", again.body);

    // Sign in with the password: CSRF first, then the same answer whether or not the
    // email exists.
    let login_url = hub.url("/admin/login");
    let login = get(&client, &login_url, None).await;
    let login_csrf = hidden_csrf(&login.body);
    let login_cookie = session_cookie(&login.cookie.expect("the login CSRF cookie"));
    let no_cookie = post_form(
        &client,
        &login_url,
        None,
        &[
            ("csrf", &login_csrf),
            ("email", email),
            ("password", password),
        ],
    )
    .await;
    assert_eq!(no_cookie.status, 403);
    let attempt = |who: &'static str, secret: &'static str| {
        let (client, login_url, login_cookie, login_csrf) =
            (&client, &login_url, &login_cookie, &login_csrf);
        async move {
            post_form(
                client,
                login_url,
                Some(login_cookie),
                &[("csrf", login_csrf), ("email", who), ("password", secret)],
            )
            .await
        }
    };
    // Failures count in fixed windows (5 minutes by default): start well inside one.
    let into_window = shared::clock::now().unix_timestamp().rem_euclid(300);
    if into_window > 240 {
        tokio::time::sleep(std::time::Duration::from_secs((301 - into_window) as u64)).await;
    }
    let wrong = attempt(email, "not the password at all").await;
    let unknown = attempt("nobody@shop.com", "not the password at all").await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(
        wrong.body, unknown.body,
        "failures must not tell emails apart"
    );
    assert!(wrong.cookie.is_none());

    let signed_in = attempt("PW@shop.com", password).await;
    assert_eq!(
        (signed_in.status, signed_in.location.as_deref()),
        (302, Some("/admin")),
        "{}",
        signed_in.body
    );
    let session = session_cookie(&signed_in.cookie.unwrap());
    let page = get(&client, &hub.url("/admin"), Some(&session)).await;
    assert!(page.body.contains("pw-shop.com"));

    // Five failures for an email lock it, the right password included, for the window.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(attempt(email, "still not the password").await.status);
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 429],
        "one failure was counted above"
    );
    let locked = attempt(email, password).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert!(locked.cookie.is_none());
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}
