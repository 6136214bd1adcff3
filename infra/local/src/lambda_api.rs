//! The Lambda `Invoke` API for the stand-in's event functions
//! (`POST /2015-03-31/functions/{name}/invocations`), so `hub-admin reinvoke` calls them
//! locally exactly as it calls Lambda on AWS (`.hub/local.env` points
//! `AWS_ENDPOINT_URL_LAMBDA` here). The name may be a function's binary name or an ARN
//! naming it (as on-failure records do).

use std::{collections::HashMap, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};

use crate::functions::Invoke;

type Functions = Arc<HashMap<String, Invoke>>;

pub fn router(functions: HashMap<String, Invoke>) -> Router {
    Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .with_state(Arc::new(functions))
}

/// `arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]` or `<name>`.
fn function_name(name_or_arn: &str) -> &str {
    match name_or_arn.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => name_or_arn,
    }
}

fn aws_error(status: StatusCode, kind: &'static str, message: String) -> Response {
    let mut response = (
        status,
        axum::Json(serde_json::json!({"Type": "User", "message": message})),
    )
        .into_response();
    response
        .headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(kind));
    response
}

async fn invoke(
    State(functions): State<Functions>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let name = function_name(&name);
    let Some(function) = functions.get(name).cloned() else {
        return aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!("Function not found: {name}"),
        );
    };
    let payload: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(payload) => payload,
        Err(e) => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                format!("Could not parse request body into json: {e}"),
            );
        }
    };
    let asynchronous = headers
        .get("x-amz-invocation-type")
        .is_some_and(|v| v.as_bytes() == b"Event");
    if asynchronous {
        let name = name.to_owned();
        tokio::spawn(async move {
            if let Err(error) = shared::runtime::invoke_guarded(&function, payload).await {
                tracing::warn!(function = %name, %error, "asynchronous invocation failed");
            }
        });
        return StatusCode::ACCEPTED.into_response();
    }
    match shared::runtime::invoke_guarded(&function, payload).await {
        Ok(result) => axum::Json(result).into_response(),
        Err(error) => {
            let mut response =
                axum::Json(serde_json::json!({"errorMessage": error, "errorType": "HandlerError"}))
                    .into_response();
            response.headers_mut().insert(
                "x-amz-function-error",
                HeaderValue::from_static("Unhandled"),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_arns_or_as_given() {
        assert_eq!(
            function_name(
                "arn:aws:lambda:us-east-1:123456789012:function:account-timeline:$LATEST"
            ),
            "account-timeline"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:account-timeline"),
            "account-timeline"
        );
        assert_eq!(function_name("account-timeline"), "account-timeline");
    }
}
