//! `infra/openapi.yaml` describes exactly the template's HTTP routes, and what the hub
//! answers where no other test looks.

use std::collections::BTreeSet;

use hub_emulator::Template;
use hub_tests::{TestHub, assert_documented, openapi};

#[test]
fn the_document_and_the_template_name_the_same_routes() {
    let template =
        Template::load(&hub_emulator::project_root().join("infra/template.yaml")).unwrap();
    let in_template: BTreeSet<(String, String)> = template
        .functions()
        .unwrap()
        .into_iter()
        .flat_map(|f| f.routes)
        .map(|r| (r.method.to_ascii_uppercase(), r.path))
        .collect();
    let in_document: BTreeSet<(String, String)> = openapi()["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| {
                    ["get", "put", "post", "delete", "options", "head", "patch"]
                        .contains(&k.as_str())
                })
                .map(move |method| (method.to_ascii_uppercase(), path.clone()))
        })
        .collect();
    assert_eq!(in_template, in_document);
    assert_eq!(openapi()["openapi"], "3.1.0");
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_script_and_errors_match_the_document() {
    let hub = TestHub::start("openapi").await;
    let response = hub
        .http
        .request(reqwest::Method::OPTIONS, hub.url("/api/v0/widget/events"))
        .send()
        .await
        .unwrap();
    assert_documented(
        "OPTIONS",
        "/api/v0/widget/events",
        response.status().as_u16(),
        None,
    );
    let response = hub.http.get(hub.url("/widget.js")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_documented("GET", "/widget.js", 200, None);
    // Errors of each route, unauthenticated and malformed.
    for (method, path, url) in [
        ("POST", "/api/v0/widget/events", "/api/v0/widget/events"),
        (
            "GET",
            "/api/v0/partners/customers/{customer_id}/analytics",
            "/api/v0/partners/customers/c-1/analytics",
        ),
    ] {
        let response = hub
            .http
            .request(method.parse().unwrap(), hub.url(url))
            .header("content-type", "application/json")
            .body("{nope")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(status >= 400, "{method} {url}: {status}");
        assert_documented(method, path, status, Some(&body));
    }
    hub.stop().await;
}
