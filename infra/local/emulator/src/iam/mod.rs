//! IAM for the stand-in: each function's calls to the emulator are checked against the
//! policies SAM would attach to its role, evaluated as AWS evaluates identity policies,
//! so a permission missing from `infra/template.yaml` fails locally as it would on AWS.
//!
//! The proxy in front of moto: [`access_key_id`] names the caller, [`function_policies`]
//! renders its policies once, [`authorization_requests`] turns each call into the
//! permissions it needs, [`authorize`] checks them, and [`access_denied_response`] is what
//! the caller gets when one is missing.

pub mod policy;
pub mod reference;
pub mod render;
pub mod request;
#[cfg(test)]
mod tests;

pub use policy::{
    Condition, Decision, Denial, Effect, Patterns, PolicyDocument, PolicyError, Statement,
    authorize, evaluate, unchecked_conditions,
};
pub use render::{function_policies, managed_policy};
pub use request::{
    AuthzRequest, Credential, RawRequest, ResourceIndex, access_key_id, authorization_requests,
    credential, describe_operation,
};

/// How the call's service answers errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// DynamoDB, DynamoDB Streams, SQS (JSON).
    AwsJson1_0,
    /// KMS, EventBridge.
    AwsJson1_1,
    /// SES v2, Lambda.
    RestJson,
    /// SQS's older `Action=...` form protocol.
    AwsQuery,
}

/// The protocol of a request: `X-Amz-Target` means awsJson (the version from its
/// content type, else the service's), a form body or `Action=` query the query protocol,
/// anything else REST.
pub fn protocol(req: &RawRequest) -> Protocol {
    let content_type = req
        .header("content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if req.header("x-amz-target").is_some() {
        if content_type.contains("x-amz-json-1.1") {
            return Protocol::AwsJson1_1;
        }
        if content_type.contains("x-amz-json-1.0") {
            return Protocol::AwsJson1_0;
        }
        let service = credential(&req.headers).map(|c| c.service);
        return match service.as_deref() {
            Some("kms" | "events") => Protocol::AwsJson1_1,
            _ => Protocol::AwsJson1_0,
        };
    }
    let action_in_query = req
        .query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("Action=")));
    if content_type.starts_with("application/x-www-form-urlencoded") || action_in_query {
        Protocol::AwsQuery
    } else {
        Protocol::RestJson
    }
}

/// AWS's AccessDenied answer to `request`, in its service's protocol:
/// `User: <caller> is not authorized to perform: <action> on resource: <resource> <reason>`
/// (`reason` as [`Decision::reason`] words it: `because no identity-based policy allows
/// ...` or `with an explicit deny ...`).
///
/// awsJson: 400 with `__type: AccessDeniedException`; REST (SES v2, Lambda): 403 with
/// `x-amzn-errortype: AccessDeniedException`; query (SQS): 403 XML with code
/// `AccessDenied`. The Rust SDK reads the code from `x-amzn-errortype` or `__type`, and
/// retries neither (AccessDeniedException is in none of its throttling or transient
/// lists, and only 500/502/503/504 are retried by status). No `x-amzn-query-error`
/// header: with it the SQS SDK would report the query code `AccessDenied` instead.
pub fn access_denied_response(
    request: &RawRequest,
    principal_arn: &str,
    action: &str,
    resource: &str,
    reason: &str,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let message = format!(
        "User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {reason}"
    );
    let request_id = request_id();
    let mut headers = vec![("x-amzn-requestid".to_owned(), request_id.clone())];
    let json_type = |version: &str| format!("application/x-amz-json-{version}");
    match protocol(request) {
        Protocol::AwsJson1_0 | Protocol::AwsJson1_1 => {
            let version = if protocol(request) == Protocol::AwsJson1_1 {
                "1.1"
            } else {
                "1.0"
            };
            headers.push(("content-type".into(), json_type(version)));
            let body = serde_json::json!({"__type": "AccessDeniedException", "message": message});
            (400, headers, body.to_string().into_bytes())
        }
        Protocol::RestJson => {
            headers.push(("content-type".into(), "application/json".into()));
            headers.push(("x-amzn-errortype".into(), "AccessDeniedException".into()));
            let body = serde_json::json!({"message": message});
            (403, headers, body.to_string().into_bytes())
        }
        Protocol::AwsQuery => {
            headers.push(("content-type".into(), "text/xml".into()));
            let body = format!(
                "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{}</Message><Detail/></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
                xml_escape(&message)
            );
            (403, headers, body.into_bytes())
        }
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// A request id shaped like AWS's (a UUID), unique within the process.
fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // The process id in place of a time: unique enough, and no clock read here.
    let nanos = u64::from(std::process::id()) << 32;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hex = format!("{nanos:016x}{n:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
