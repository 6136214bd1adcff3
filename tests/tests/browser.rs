//! The admin page in a real browser: headless Chromium over WebDriver walks a shop
//! owner through the SSO link, the page, the cookie's flags, a replayed link, the
//! welcome email's confirmation link, setting a password, signing out and signing in
//! with the password. A screenshot of `/admin` is kept as an artifact
//! (`target/test-artifacts/admin-page.png`).

use std::path::PathBuf;

use fantoccini::{Client, Locator};
use hub_tests::{
    PARTNER_A_KEY, PARTNER_A_PUB, TestHub, browser::Browser, confirm_link, shop_claims, sso_link,
};

/// Where the screenshot of `/admin` is written (beside the test binaries' target dir).
fn artifact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("test-artifacts")
        .join(name)
}

async fn page_text(web: &Client) -> String {
    web.find(Locator::Css("body"))
        .await
        .expect("a body")
        .text()
        .await
        .expect("its text")
}

/// The page's text once it contains `needle` (a click's navigation completes after the
/// click returns), or a panic with the text after 10 s.
async fn until_text(web: &Client, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = match web.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(needle) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{needle:?} not on the page at {}:\n{text}",
            web.current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn path(web: &Client) -> String {
    web.current_url().await.expect("a URL").path().to_owned()
}

async fn fill(web: &Client, name: &str, value: &str) {
    web.find(Locator::Css(&format!("input[name='{name}']")))
        .await
        .unwrap_or_else(|e| panic!("no field {name}: {e}"))
        .send_keys(value)
        .await
        .expect("typing");
}

async fn press(web: &Client, selector: &str) {
    web.find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("no {selector}: {e}"))
        .click()
        .await
        .expect("a click");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shop_owner_walks_the_admin_page_in_chromium() {
    let browser = Browser::start().await;
    let web = &browser.client;
    let hub = TestHub::start("browser").await;
    let partner = hub
        .register("Partner A", PARTNER_A_PUB, PARTNER_A_KEY)
        .await;
    let shop = "browser-shop.com";
    assert_eq!(hub.provision(&partner, &shop_claims(shop)).await.0, 201);
    hub.confirm_plans(&partner, shop, &[1, 2]).await;
    let email = "owner@browser-shop.com";
    let link = sso_link(&hub, &partner, shop, email, 300);

    // 1. The partner's SSO link lands on /admin, showing the shop and its plans.
    web.goto(&link).await.expect("the SSO link");
    assert_eq!(path(web).await, "/admin");
    let text = page_text(web).await;
    for expected in [
        shop,
        "running",
        "AI Hub",
        "Mail & Push",
        "Billing period",
        email,
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} not on the page:\n{text}"
        );
    }

    // 2. The session cookie as the browser stored it.
    let cookie = web
        .get_named_cookie("hub_session")
        .await
        .expect("the session cookie");
    assert_eq!(cookie.http_only(), Some(true), "HttpOnly");
    assert_eq!(cookie.secure(), Some(true), "Secure");
    assert_eq!(
        cookie.same_site().map(|s| s.to_string()).as_deref(),
        Some("Lax"),
        "SameSite"
    );
    assert_eq!(cookie.path(), Some("/"), "Path");
    let screenshot = artifact("admin-page.png");
    browser.screenshot(&screenshot).await;
    assert!(
        std::fs::metadata(&screenshot)
            .expect("the screenshot")
            .len()
            > 1_000
    );

    // 3. The same link again is refused with a page a person can read.
    web.goto(&link).await.expect("the SSO link again");
    let text = page_text(web).await;
    assert!(text.contains("Cannot sign you in"), "{text}");
    assert!(text.contains("already used"), "{text}");
    assert_ne!(path(web).await, "/admin");

    // 4. The welcome email's link sets a password, and signs in.
    let confirm = confirm_link(&hub, email).await;
    web.goto(&confirm).await.expect("the confirmation link");
    let password = "a long enough password";
    fill(web, "password", password).await;
    fill(web, "repeat", password).await;
    press(web, "button[type='submit']").await;
    until_text(web, "Your shops").await;
    assert_eq!(path(web).await, "/admin");
    assert!(page_text(web).await.contains(shop));

    // 5. Sign out: the cookie is gone and /admin asks to sign in.
    press(web, "form[action='/admin/logout'] button").await;
    until_text(web, "You are signed out").await;
    assert!(
        web.get_named_cookie("hub_session").await.is_err(),
        "cookie kept"
    );
    web.goto(&hub.url("/admin")).await.expect("/admin");
    assert!(page_text(web).await.contains("not signed in"));

    // 6. Sign in with the password (a wrong one first).
    press(web, "a[href='/admin/login']").await;
    until_text(web, "Email").await;
    assert_eq!(path(web).await, "/admin/login");
    fill(web, "email", email).await;
    fill(web, "password", "not the password").await;
    press(web, "button[type='submit']").await;
    until_text(web, "The email or password is not right").await;
    fill(web, "email", email).await;
    fill(web, "password", password).await;
    press(web, "button[type='submit']").await;
    until_text(web, "Your shops").await;
    assert_eq!(path(web).await, "/admin");
    assert!(page_text(web).await.contains(shop));
    assert!(web.get_named_cookie("hub_session").await.is_ok());

    browser.close().await;
    hub.stop().await;
}
