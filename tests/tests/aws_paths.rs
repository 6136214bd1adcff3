//! What API Gateway does to a request before a function sees it. The stand-in hands
//! requests straight to the routers; on AWS, an HTTP API event goes through
//! `lambda_http`'s own conversion, which prefixes the stage to the path unless the stage
//! is `$default`. Here recorded HTTP API (payload v2) events for every route of the
//! template, on the template's own stage, go through that conversion into each
//! function's router, and must get the answer the stand-in gives for the same call.

use std::sync::Arc;

use hub_emulator::{Template, template::to_json};
use hub_local::functions::{self, Entry};
use hub_tests::TestHub;
use serde_json::{Value, json};
use tower::ServiceExt;

fn template() -> Template {
    Template::load(&hub_emulator::project_root().join("infra/template.yaml")).unwrap()
}

/// The stage the template serves its HTTP API on.
fn template_stage(template: &Template) -> String {
    let (_, api) = template
        .resources_of_type("AWS::Serverless::HttpApi")
        .next()
        .expect("an HttpApi");
    match api.get("StageName").map(to_json) {
        None | Some(Value::Null) => "$default".to_owned(),
        // `!Ref Stage`: the parameter's value.
        Some(Value::String(name)) if template.parameter_default(&name).is_some() => {
            template.parameter_default(&name).unwrap()
        }
        Some(Value::String(stage)) => stage,
        Some(other) => panic!("StageName {other}"),
    }
}

/// A route's path with its parameters filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "sample-1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// An HTTP API payload v2 event as API Gateway sends it (recorded shape).
fn recorded_event(method: &str, path: &str, stage: &str, body: &str) -> Value {
    let raw_path = if stage == "$default" {
        path.to_owned()
    } else {
        format!("/{stage}{path}")
    };
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": raw_path,
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "host": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
            "user-agent": "curl/8.5.0",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abcdef1234",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "curl/8.5.0"
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": format!("{method} {path}"),
            "stage": stage,
            "time": "23/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1_795_428_000_000_u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// Status and error code of a function's router for a recorded event, converted the way
/// `lambda_http::run` converts it on Lambda.
async fn through_lambda_http(router: axum::Router, event: &Value) -> (u16, Option<String>) {
    let request = lambda_http::request::from_str(&event.to_string()).expect("a v2 event");
    let response = router.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let code = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
    (status, code)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_on_aws_as_it_does_in_the_stand_in() {
    let hub = TestHub::start("aws-paths").await;
    let template = template();
    let stage = template_stage(&template);
    let body = "{}";
    let mut checked = 0;
    for def in template.functions().unwrap() {
        for route in &def.routes {
            let Entry::Http(router) = functions::find(&def.binary)
                .expect("linked")
                .bind(Arc::clone(&hub.stand_in.hub))
                .unwrap()
            else {
                panic!("{} has routes but is not an HTTP function", def.binary)
            };
            let path = concrete(&route.path);
            let event = recorded_event(&route.method, &path, &stage, body);
            let (status, code) = through_lambda_http(router.clone(), &event).await;
            assert_ne!(
                code.as_deref(),
                Some("not_found"),
                "{} {path} on stage {stage}: no route matched after lambda_http's conversion",
                route.method
            );
            // The stand-in answers the same call alike.
            let local = hub
                .http
                .request(route.method.parse().unwrap(), hub.url(&path))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(
                local.status().as_u16(),
                status,
                "{} {path}: the stand-in and AWS disagree",
                route.method
            );

            // The negative control: on a named stage the same route would not match.
            let named = recorded_event(&route.method, &path, "dev", body);
            assert_eq!(
                through_lambda_http(router, &named).await,
                (404, Some("not_found".to_owned())),
                "a named stage puts /dev in the path"
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} routes");
    hub.stop().await;
}
