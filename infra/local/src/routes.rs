//! Serves the template's HttpApi routes through the functions' own routers.

use std::collections::BTreeMap;

use std::net::SocketAddr;

use axum::{
    Router,
    extract::{ConnectInfo, Request},
    response::IntoResponse,
    routing::{MethodFilter, MethodRouter, any},
};
use lambda_http::{
    aws_lambda_events::apigw::{
        ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
    },
    request::RequestContext,
};
use tower::ServiceExt;

use crate::{StandInError, round_trips::RoundTripLog};

/// An API Gateway path (`/a/{id}`, `/a/{proxy+}`) in axum's syntax.
pub fn axum_path(path: &str) -> String {
    path.split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                Some(name) => format!("{{*{name}}}"),
                None => segment.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

fn method_filter(method: &str) -> Result<Option<MethodFilter>, StandInError> {
    Ok(Some(match method {
        "ANY" | "X-AMAZON-APIGATEWAY-ANY-METHOD" => return Ok(None),
        "GET" => MethodFilter::GET,
        "POST" => MethodFilter::POST,
        "PUT" => MethodFilter::PUT,
        "PATCH" => MethodFilter::PATCH,
        "DELETE" => MethodFilter::DELETE,
        "HEAD" => MethodFilter::HEAD,
        "OPTIONS" => MethodFilter::OPTIONS,
        other => {
            return Err(StandInError::Template(format!(
                "unsupported HTTP method {other}"
            )));
        }
    }))
}

/// One route of the template, bound to a function's router.
pub struct BoundRoute {
    pub method: String,
    pub path: String,
    /// The function's binary (for the round-trip log).
    pub function: String,
    pub target: Router,
}

/// Stand-in only: lets a local client (the attack suite) play several callers. API
/// Gateway takes `sourceIp` from the connection and the functions never read a header
/// for it; this one is removed before the request reaches a function.
pub const LOCAL_SOURCE_IP_HEADER: &str = "x-local-source-ip";

/// The request context API Gateway gives Lambda (what `lambda_http` puts in the
/// request's extensions): the route key, the `$default` stage, a request id and the
/// caller's address.
fn request_context(route_key: &str, source_ip: String) -> RequestContext {
    let mut http = ApiGatewayV2httpRequestContextHttpDescription::default();
    http.source_ip = Some(source_ip);
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route_key.to_owned());
    context.stage = Some("$default".to_owned());
    context.request_id = Some(shared::secrets::random_hex16());
    context.http = http;
    RequestContext::ApiGatewayV2(context)
}

/// The routes, each request's AWS round trips measured into `log`.
pub fn build(routes: Vec<BoundRoute>, log: &RoundTripLog) -> Result<Router, StandInError> {
    let mut by_path: BTreeMap<String, MethodRouter> = BTreeMap::new();
    for route in routes {
        let target = route.target;
        let route_key = format!("{} {}", route.method, route.path);
        let (log, function) = (log.clone(), route.function.clone());
        let forward = move |request: Request| {
            let target = target.clone();
            let route_key = route_key.clone();
            let (log, function) = (log.clone(), function.clone());
            async move {
                // A fresh request, as API Gateway hands Lambda one: the outer router's
                // matched path and parameters must not leak into the function's router.
                let (mut parts, body) = request.into_parts();
                let peer = parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|ConnectInfo(addr)| addr.ip().to_string());
                let chosen = parts
                    .headers
                    .remove(LOCAL_SOURCE_IP_HEADER)
                    .and_then(|v| v.to_str().ok().map(str::to_owned));
                let source_ip = chosen.or(peer).unwrap_or_else(|| "127.0.0.1".to_owned());
                parts.extensions = Default::default();
                parts
                    .extensions
                    .insert(request_context(&route_key, source_ip));
                let (response, measured) =
                    shared::round_trips::measure(target.oneshot(Request::from_parts(parts, body)))
                        .await;
                let response = response.into_response();
                let outcome = response.status().as_u16().to_string();
                log.record(&function, route_key, outcome, measured);
                response
            }
        };
        let path = axum_path(&route.path);
        let entry = by_path.remove(&path).unwrap_or_default();
        let entry = match method_filter(&route.method)? {
            Some(filter) => entry.on(filter, forward),
            None => any(forward),
        };
        by_path.insert(path, entry);
    }
    let mut router = Router::new();
    for (path, methods) in by_path {
        router = router.route(&path, methods);
    }
    Ok(router)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_api_gateway_paths() {
        assert_eq!(
            axum_path("/api/v0/partners/domains"),
            "/api/v0/partners/domains"
        );
        assert_eq!(axum_path("/a/{id}/b"), "/a/{id}/b");
        assert_eq!(axum_path("/a/{proxy+}"), "/a/{*proxy}");
    }
}
