//! The connector catalog (`servertypes.json`, data in the repo): each connector's
//! connect form, and for OAuth2 connectors the provider's URLs and scopes. Client ids
//! and secrets are deployment secrets (`hub-admin set-oauth-client`), never here.

use std::{collections::BTreeMap, sync::LazyLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::EmbedError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    ApiKey,
    LoginPassword,
    Oauth2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Integer,
    Boolean,
    /// An `https` URL.
    Url,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormField {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuth2Settings {
    pub authorize_url: String,
    pub token_url: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerType {
    pub id: u64,
    pub name: String,
    pub category: String,
    pub auth: AuthKind,
    pub form: Vec<FormField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Settings>,
}

#[derive(Deserialize)]
struct Catalog {
    servertypes: Vec<ServerType>,
}

static CATALOG: LazyLock<Vec<ServerType>> = LazyLock::new(|| {
    serde_json::from_str::<Catalog>(include_str!("servertypes.json"))
        .map(|c| c.servertypes)
        .unwrap_or_else(|e| panic!("servertypes.json: {e}"))
});

/// Every connector, by id.
pub fn all() -> &'static [ServerType] {
    &CATALOG
}

pub fn find(id: u64) -> Option<&'static ServerType> {
    CATALOG.iter().find(|s| s.id == id)
}

/// Longest accepted value of a secret field (tokens, passwords) and of any other field.
const MAX_SECRET_BYTES: usize = 4096;

/// A connection's form values, checked against the connector's form: public values
/// (stored and shown) and secret ones (sealed, never shown).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormValues {
    pub public: BTreeMap<String, Value>,
    pub secret: BTreeMap<String, String>,
}

impl ServerType {
    /// Checks a `POST /api/servers` body (less `servertype_id`) against the form: each
    /// field known, of its type, the required ones present.
    pub fn check_form(
        &self,
        body: &serde_json::Map<String, Value>,
    ) -> Result<FormValues, EmbedError> {
        let mut values = FormValues::default();
        for (name, value) in body {
            let field = self.form.iter().find(|f| &f.name == name).ok_or_else(|| {
                EmbedError::invalid(
                    name,
                    format!(
                        "is not a field of {}'s connect form (GET /api/servertypes)",
                        self.name
                    ),
                )
            })?;
            if value.is_null() {
                continue;
            }
            let checked = check_value(field, value)?;
            if field.secret {
                let text = match &checked {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                values.secret.insert(name.clone(), text);
            } else {
                values.public.insert(name.clone(), checked);
            }
        }
        for field in &self.form {
            let present =
                values.public.contains_key(&field.name) || values.secret.contains_key(&field.name);
            if field.required && !present {
                return Err(EmbedError::Missing(field.name.clone()));
            }
        }
        Ok(values)
    }
}

fn check_value(field: &FormField, value: &Value) -> Result<Value, EmbedError> {
    let wrong = |what: &str| EmbedError::invalid(&field.name, format!("must be {what}"));
    match field.kind {
        FieldType::Integer => value
            .as_i64()
            .map(Value::from)
            .ok_or_else(|| wrong("an integer")),
        FieldType::Boolean => value
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| wrong("true or false")),
        FieldType::String | FieldType::Url => {
            let text = value.as_str().ok_or_else(|| wrong("a string"))?;
            if text.trim().is_empty() {
                return Err(wrong("a non-empty string"));
            }
            if field.secret {
                if text.len() > MAX_SECRET_BYTES || text.chars().any(char::is_control) {
                    return Err(wrong("at most 4096 bytes without control characters"));
                }
                return Ok(Value::String(text.to_owned()));
            }
            if field.kind == FieldType::Url {
                let url = url::Url::parse(text.trim()).map_err(|_| wrong("an https URL"))?;
                if url.scheme() != "https" || text.len() > crate::domain::MAX_URL_BYTES {
                    return Err(wrong("an https URL of at most 2048 bytes"));
                }
                return Ok(Value::String(url.to_string()));
            }
            let text = crate::domain::free_text(text)
                .map_err(|e| EmbedError::invalid(&field.name, e))?
                .ok_or_else(|| wrong("a non-empty string"))?;
            Ok(Value::String(text))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(value: Value) -> serde_json::Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_catalog_has_each_kind_of_connector() {
        for kind in [AuthKind::ApiKey, AuthKind::LoginPassword, AuthKind::Oauth2] {
            assert!(all().iter().any(|s| s.auth == kind), "{kind:?}");
        }
        for server in all() {
            assert_eq!(
                server.auth == AuthKind::Oauth2,
                server.oauth2.is_some(),
                "{}",
                server.name
            );
            if let Some(oauth) = &server.oauth2 {
                assert!(oauth.authorize_url.starts_with("https://"));
                assert!(oauth.token_url.starts_with("https://"));
            }
        }
        assert_eq!(find(123).unwrap().name, "Pipedrive");
    }

    #[test]
    fn forms_name_the_field_that_is_wrong() {
        let pg = find(345).unwrap();
        let ok = pg
            .check_form(&body(
                json!({"host": "db.example.com", "port": 5432, "database": "d",
                "login": "u", "password": "p w", "ssl": true}),
            ))
            .unwrap();
        assert_eq!(ok.secret["password"], "p w");
        assert_eq!(ok.public["port"], json!(5432));
        assert!(!ok.public.contains_key("password"));
        let field = |v: Value| match pg.check_form(&body(v)) {
            Err(EmbedError::Invalid { field, .. }) | Err(EmbedError::Missing(field)) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(json!({"host": "h", "database": "d", "login": "u"})),
            "password"
        );
        assert_eq!(
            field(
                json!({"host": "h", "port": "5432", "database": "d", "login": "u", "password": "p"})
            ),
            "port"
        );
        assert_eq!(
            field(
                json!({"host": "h", "database": "d", "login": "u", "password": "p", "colour": 1})
            ),
            "colour"
        );
        assert_eq!(
            field(json!({"host": "", "database": "d", "login": "u", "password": "p"})),
            "host"
        );
        let odoo = find(234).unwrap();
        assert!(odoo
            .check_form(&body(json!({"url": "http://odoo.example.com", "database": "d", "login": "u", "password": "p"})))
            .is_err());
    }
}
