use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use super::ParseError;

/// A shop's host, without protocol, port or path; lowercased because shops are unique
/// across partners by host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShopDomain(String);

impl ShopDomain {
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(ParseError::new("must not be empty"));
        }
        if value.contains("://") {
            return Err(ParseError::new(
                "must be a host without protocol, e.g. my-shop.com rather than https://my-shop.com",
            ));
        }
        if let Some(c) = value
            .chars()
            .find(|c| matches!(c, '/' | '?' | '#' | '@' | ':'))
        {
            return Err(ParseError::new(format!(
                "must be a bare host (no path, port or credentials); found '{c}'"
            )));
        }
        let host = value
            .strip_suffix('.')
            .unwrap_or(value)
            .to_ascii_lowercase();
        if host.len() > 253 {
            return Err(ParseError::new("must be at most 253 characters"));
        }
        let labels: Vec<&str> = host.split('.').collect();
        if labels.len() < 2 {
            return Err(ParseError::new(
                "must be a fully qualified host such as my-shop.com",
            ));
        }
        for label in &labels {
            let valid = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid {
                return Err(ParseError::new(format!(
                    "'{label}' is not a valid host label"
                )));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(ParseError::new("must be a host name, not an IP address"));
        }
        Ok(Self(host))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShopDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A shop's display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShopName(String);

impl ShopName {
    const MAX_CHARS: usize = 200;

    pub fn parse(value: &str) -> Result<Self, ParseError> {
        super::bounded_text(value, Self::MAX_CHARS)?
            .map(Self)
            .ok_or_else(|| ParseError::new("must not be empty"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An active ISO-4217 currency code, uppercase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CurrencyCode(String);

impl CurrencyCode {
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        let code = value.trim().to_ascii_uppercase();
        // XXX (no currency) and XTS (testing) are codes, not currencies.
        match iso_currency::Currency::from_code(&code) {
            Some(_) if code.len() == 3 && !matches!(code.as_str(), "XXX" | "XTS") => Ok(Self(code)),
            _ => Err(ParseError::new(format!(
                "'{}' is not an ISO-4217 currency code",
                value.trim()
            ))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A contact email address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        let value = value.trim();
        email_address::EmailAddress::from_str(value)
            .map(|_| Self(value.to_owned()))
            .map_err(|e| ParseError::new(format!("is not a valid email address ({e})")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A UTC offset in ISO-8601 basic form: `Z` or `±HHMM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TzOffset(String);

impl TzOffset {
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        let value = value.trim();
        if value == "Z" {
            return Ok(Self(value.to_owned()));
        }
        let invalid = || ParseError::new("must be Z or an offset of the form +HHMM / -HHMM");
        let (sign, digits) = value.split_at_checked(1).ok_or_else(invalid)?;
        if !matches!(sign, "+" | "-")
            || digits.len() != 4
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid());
        }
        let hours: i32 = digits[..2].parse().map_err(|_| invalid())?;
        let minutes: i32 = digits[2..].parse().map_err(|_| invalid())?;
        let total = hours * 60 + minutes;
        let in_range = if sign == "+" {
            total <= 14 * 60
        } else {
            total <= 12 * 60
        };
        if minutes >= 60 || !in_range {
            return Err(ParseError::new("must be between -1200 and +1400"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The offset east of UTC, in minutes.
    pub fn minutes(&self) -> i32 {
        if self.0 == "Z" {
            return 0;
        }
        let total = self.0[1..3].parse::<i32>().unwrap_or(0) * 60
            + self.0[3..5].parse::<i32>().unwrap_or(0);
        if self.0.starts_with('-') {
            -total
        } else {
            total
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An ISO-639-1 language code, lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Locale(String);

impl Locale {
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        let code = value.trim().to_ascii_lowercase();
        match isolang::Language::from_639_1(&code) {
            Some(_) => Ok(Self(code)),
            None => Err(ParseError::new(format!(
                "'{}' is not an ISO-639-1 language code (two letters, e.g. en)",
                value.trim()
            ))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_domain_is_a_lowercased_bare_host() {
        assert_eq!(
            ShopDomain::parse(" My-Shop.COM ").unwrap().as_str(),
            "my-shop.com"
        );
        assert_eq!(
            ShopDomain::parse("shop.example.co.uk.").unwrap().as_str(),
            "shop.example.co.uk"
        );
        for bad in [
            "",
            "https://my-shop.com",
            "my-shop.com/path",
            "my-shop.com:8080",
            "localhost",
            "-bad.com",
            "bad-.com",
            "sp ace.com",
            "1.2.3.4",
            "a..com",
            "user@shop.com",
        ] {
            assert!(ShopDomain::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn currency_codes_follow_iso_4217() {
        assert_eq!(CurrencyCode::parse("USD").unwrap().as_str(), "USD");
        assert_eq!(CurrencyCode::parse("eur").unwrap().as_str(), "EUR");
        for bad in ["US", "USDX", "XYZ", "", "XXX", "XTS", "xts"] {
            assert!(
                CurrencyCode::parse(bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn emails_are_checked() {
        assert!(Email::parse("hello@releva.ai").is_ok());
        for bad in ["", "hello", "hello@", "@releva.ai", "+0300"] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn timezone_offsets_are_z_or_basic_form() {
        assert_eq!(TzOffset::parse("Z").unwrap().minutes(), 0);
        assert_eq!(TzOffset::parse("+0000").unwrap().minutes(), 0);
        assert_eq!(TzOffset::parse("+0300").unwrap().minutes(), 180);
        assert_eq!(TzOffset::parse("-0230").unwrap().minutes(), -150);
        assert_eq!(TzOffset::parse("+1400").unwrap().minutes(), 840);
        for bad in [
            "", "z", "+03:00", "+3", "0300", "+0360", "+1500", "-1300", "UTC", "+03000",
        ] {
            assert!(TzOffset::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn locales_are_iso_639_1() {
        assert_eq!(Locale::parse("en").unwrap().as_str(), "en");
        assert_eq!(Locale::parse("DE").unwrap().as_str(), "de");
        for bad in ["", "eng", "en-US", "xx", "e"] {
            assert!(Locale::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn shop_names_are_trimmed_and_bounded() {
        assert_eq!(ShopName::parse("  My Shop ").unwrap().as_str(), "My Shop");
        assert!(ShopName::parse("   ").is_err());
        assert!(ShopName::parse(&"x".repeat(201)).is_err());
    }
}
