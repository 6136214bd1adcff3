//! Serves the template's HttpApi routes through the functions' own routers.

use std::collections::BTreeMap;

use axum::{
    Router,
    extract::Request,
    response::IntoResponse,
    routing::{MethodFilter, MethodRouter, any},
};
use tower::ServiceExt;

use crate::StandInError;

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
    pub target: Router,
}

pub fn build(routes: Vec<BoundRoute>) -> Result<Router, StandInError> {
    let mut by_path: BTreeMap<String, MethodRouter> = BTreeMap::new();
    for route in routes {
        let target = route.target;
        let forward = move |request: Request| {
            let target = target.clone();
            async move {
                // A fresh request, as API Gateway hands Lambda one: the outer router's
                // matched path and parameters must not leak into the function's router.
                let (mut parts, body) = request.into_parts();
                parts.extensions = Default::default();
                target
                    .oneshot(Request::from_parts(parts, body))
                    .await
                    .into_response()
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
