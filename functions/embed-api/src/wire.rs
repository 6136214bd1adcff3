//! The embed contract's wire format: sub-account bodies (snake_case, as the contract
//! writes them) parsed into the domain, and the views the API answers.

use serde_json::{Map, Value, json};
use shared::{
    domain::{Email, ExternalId, Locale, ParseError, free_text},
    embed::{
        ProfileChange, SubAccount, SubAccountTombstone,
        catalog::{self, ServerType},
        connections::{Connection, ConnectionLog},
    },
    http::ApiError,
};

/// The fields a sub-account body may carry.
const SUB_ACCOUNT_FIELDS: [&str; 6] = [
    "first_name",
    "last_name",
    "email",
    "language",
    "company_name",
    "external_id",
];

/// A JSON object body, or 422.
pub fn object(body: &Value) -> Result<&Map<String, Value>, ApiError> {
    body.as_object()
        .ok_or_else(|| ApiError::invalid("body", "must be a JSON object"))
}

/// The external id of a body, if it has one.
pub fn external_id(body: &Map<String, Value>) -> Result<Option<ExternalId>, ApiError> {
    match body.get("external_id") {
        None => Ok(None),
        Some(Value::String(s)) => ExternalId::parse(s)
            .map(Some)
            .map_err(|e| ApiError::invalid_field("external_id", e)),
        Some(_) => Err(ApiError::invalid("external_id", "must be a string")),
    }
}

/// The external id of a query string.
pub fn external_id_param(value: Option<&str>) -> Result<Option<ExternalId>, ApiError> {
    value
        .map(|v| ExternalId::parse(v).map_err(|e| ApiError::invalid_field("external_id", e)))
        .transpose()
}

/// The profile fields of a body: each given field checked (`null` clears it), unknown
/// fields refused.
pub fn profile_change(body: &Map<String, Value>) -> Result<ProfileChange, ApiError> {
    if let Some(unknown) = body
        .keys()
        .find(|k| !SUB_ACCOUNT_FIELDS.contains(&k.as_str()))
    {
        return Err(ApiError::invalid(
            unknown.as_str(),
            format!(
                "is not a sub-account field ({})",
                SUB_ACCOUNT_FIELDS.join(", ")
            ),
        ));
    }
    fn field<T>(
        body: &Map<String, Value>,
        name: &str,
        parse: impl Fn(&str) -> Result<T, ParseError>,
    ) -> Result<Option<Option<T>>, ApiError> {
        match body.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => parse(s)
                .map(|v| Some(Some(v)))
                .map_err(|e| ApiError::invalid_field(name, e)),
            Some(_) => Err(ApiError::invalid(name, "must be a string")),
        }
    }
    let text = |value: &str| -> Result<String, ParseError> {
        free_text(value)?.ok_or_else(|| ParseError::new("must not be empty"))
    };
    Ok(ProfileChange {
        first_name: field(body, "first_name", text)?,
        last_name: field(body, "last_name", text)?,
        email: field(body, "email", Email::parse)?,
        language: field(body, "language", Locale::parse)?,
        company_name: field(body, "company_name", text)?,
    })
}

pub fn sub_account(sub: &SubAccount) -> Value {
    let p = &sub.profile;
    json!({
        "id": sub.number,
        "external_id": sub.external_id.as_str(),
        "first_name": p.first_name,
        "last_name": p.last_name,
        "email": p.email.as_ref().map(|e| e.as_str()),
        "language": p.language.as_ref().map(|l| l.as_str()),
        "company_name": p.company_name,
        "created_at": sub.created_at,
        "updated_at": sub.updated_at,
    })
}

pub fn deleted(tombstone: &SubAccountTombstone) -> Value {
    json!({
        "id": tombstone.number,
        "external_id": tombstone.external_id.as_str(),
        "deleted": true,
        "deleted_at": tombstone.deleted_at,
    })
}

pub fn servertype(server: &ServerType) -> Value {
    let mut view = json!({
        "id": server.id,
        "name": server.name,
        "category": server.category,
        "auth": server.auth,
        "form": server.form,
    });
    if let Some(oauth) = &server.oauth2 {
        view["oauth2"] = json!({
            "authorize_url": oauth.authorize_url,
            "token_url": oauth.token_url,
            "scopes": oauth.scopes,
        });
    }
    view
}

pub fn server(connection: &Connection) -> Value {
    let name = catalog::find(connection.servertype_id).map(|s| s.name.clone());
    json!({
        "id": connection.id,
        "servertype_id": connection.servertype_id,
        "servertype": name,
        "status": connection.status,
        "status_reason": connection.status_reason,
        "fields": connection.fields,
        "secret_fields": connection.secrets.keys().collect::<Vec<_>>(),
        "created_at": connection.created_at,
        "updated_at": connection.updated_at,
        "connected_at": connection.connected_at,
        "refreshed_at": connection.refreshed_at,
        "token_expires_at": connection.tokens.as_ref().and_then(|t| t.expires_at.clone()),
    })
}

pub fn log_line(line: &ConnectionLog) -> Value {
    json!({
        "at": line.at.split('#').next().unwrap_or(&line.at),
        "event": line.event,
        "message": line.message,
    })
}

/// The HTML page the end-customer's browser lands on after the provider.
pub fn callback_page(ok: bool, message: &str) -> String {
    let (title, colour) = if ok {
        ("Connected", "#0a7d32")
    } else {
        ("Not connected", "#b00020")
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
         <body style=\"font-family: sans-serif; max-width: 32rem; margin: 4rem auto\">\
         <h1 style=\"color: {colour}\">{title}</h1><p>{}</p>\
         <p>You can close this window.</p></body></html>",
        escape(message)
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_fields_are_checked_and_named() {
        let body = json!({"first_name": "John", "email": "not an email"});
        let err = profile_change(body.as_object().unwrap()).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("email"));
        let body = json!({"language": "english"});
        let err = profile_change(body.as_object().unwrap()).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("language"));
        let body = json!({"nickname": "j"});
        let err = profile_change(body.as_object().unwrap()).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("nickname"));
        let body = json!({"first_name": 3});
        let err = profile_change(body.as_object().unwrap()).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("first_name"));
        let body = json!({"first_name": "John", "company_name": null, "language": "EN"});
        let change = profile_change(body.as_object().unwrap()).unwrap();
        assert_eq!(change.first_name, Some(Some("John".into())));
        assert_eq!(change.company_name, Some(None));
        assert_eq!(change.language.unwrap().unwrap().as_str(), "en");
    }

    #[test]
    fn callback_pages_escape_the_message() {
        let page = callback_page(false, "<script>x</script>");
        assert!(!page.contains("<script>"));
    }
}
