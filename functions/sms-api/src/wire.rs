//! The site API's request bodies, parsed into the domain (each bad field a 422 naming it).

use serde_json::Value;
use shared::{
    domain::{CountryCode, Email, PhoneE164},
    http::ApiError,
    sms::{
        ActivationRequest,
        quiet::{SendingHours, parse_time_zone},
    },
};

/// The highest send rate a site may set (SMS per second).
const MAX_RATE: u64 = 1000;

fn string<'a>(body: &'a Value, field: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(_) => Err(ApiError::invalid(field, "must be a string")),
    }
}

fn required<'a>(body: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    string(body, field)?.ok_or_else(|| ApiError::missing_field(field))
}

/// A secret token: 8 to 512 printable ASCII characters.
fn token(body: &Value, field: &str) -> Result<String, ApiError> {
    let value = required(body, field)?;
    if value.len() < 8 || value.len() > 512 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            field,
            "must be 8 to 512 printable characters",
        ));
    }
    Ok(value.to_owned())
}

/// `{signUpSourceId, appToken, messagesToken, defaultCountry?, timeZone?,
/// quietHours?: {start, end}, ratePerSecond?}`.
pub fn activation(body: &Value) -> Result<ActivationRequest, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    let sign_up_source_id = match body.get("signUpSourceId") {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| ApiError::invalid("signUpSourceId", "must be a string or a whole number"))?
            .to_string(),
        _ => required(body, "signUpSourceId")
            .map_err(|_| {
                ApiError::invalid(
                    "signUpSourceId",
                    "is required: the sign-up source id of the sign-up flow in the gateway's Subscribers tab",
                )
            })?
            .to_owned(),
    };
    if sign_up_source_id.len() > 64 || !sign_up_source_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "signUpSourceId",
            "must be up to 64 printable characters",
        ));
    }
    let default_country = match string(body, "defaultCountry")? {
        None => shared::sms::default_country(),
        Some(c) => {
            CountryCode::parse(c).map_err(|e| ApiError::invalid_field("defaultCountry", e))?
        }
    };
    let time_zone = match string(body, "timeZone")? {
        None => "UTC".to_owned(),
        Some(z) => parse_time_zone(z).map_err(|e| ApiError::invalid_field("timeZone", e))?,
    };
    let sending_hours = match body.get("quietHours") {
        None | Some(Value::Null) => SendingHours::default(),
        Some(hours @ Value::Object(_)) => SendingHours::parse(
            string(hours, "start")?.unwrap_or("08:00"),
            string(hours, "end")?.unwrap_or("21:00"),
        )
        .map_err(|e| ApiError::invalid_field("quietHours", e))?,
        Some(_) => return Err(ApiError::invalid("quietHours", "must be {start, end}")),
    };
    let rate_per_second = match body.get("ratePerSecond") {
        None | Some(Value::Null) => 10,
        Some(v) => v
            .as_u64()
            .filter(|r| (1..=MAX_RATE).contains(r))
            .ok_or_else(|| {
                ApiError::invalid(
                    "ratePerSecond",
                    format!("must be a whole number from 1 to {MAX_RATE}"),
                )
            })? as u32,
    };
    Ok(ActivationRequest {
        sign_up_source_id,
        app_token: token(body, "appToken")?,
        messages_token: token(body, "messagesToken")?,
        default_country,
        time_zone,
        sending_hours,
        rate_per_second,
    })
}

/// `{phone, email?}` of a member: the phone in the site's country.
pub fn member(body: &Value, country: CountryCode) -> Result<(PhoneE164, Option<String>), ApiError> {
    let phone = PhoneE164::parse(required(body, "phone")?, country)
        .map_err(|e| ApiError::invalid_field("phone", e))?;
    let email = string(body, "email")?
        .map(|e| Email::parse(e).map(|e| e.as_str().to_owned()))
        .transpose()
        .map_err(|e| ApiError::invalid_field("email", e))?;
    Ok((phone, email))
}

/// The member's IANA time zone (`timeZone`), for quiet hours.
pub fn time_zone(body: &Value) -> Result<Option<String>, ApiError> {
    string(body, "timeZone")?
        .map(|z| parse_time_zone(z).map_err(|e| ApiError::invalid_field("timeZone", e)))
        .transpose()
}
