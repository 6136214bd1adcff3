//! A loyalty member's mobile number, the SMS contract's unique id for a member. Parsed
//! with libphonenumber's metadata (the `phonenumber` crate) in the site's default
//! country when it has no `+` prefix: the contract sends `7707651750` and the gateway
//! answers `+17707651750`.

use std::{fmt, str::FromStr};

use phonenumber::{Mode, country};
use serde::{Deserialize, Serialize};

use super::ParseError;

/// An ISO 3166-1 alpha-2 country, the default for numbers without a `+` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode(country::Id);

impl CountryCode {
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        let value = value.trim();
        if value.len() != 2 {
            return Err(ParseError::new(
                "must be an ISO 3166-1 alpha-2 country code such as US",
            ));
        }
        country::Id::from_str(&value.to_ascii_uppercase())
            .map(Self)
            .map_err(|_| ParseError::new("not a country libphonenumber knows"))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }
}

impl TryFrom<String> for CountryCode {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, ParseError> {
        Self::parse(&value)
    }
}

impl From<CountryCode> for String {
    fn from(value: CountryCode) -> Self {
        value.as_str().to_owned()
    }
}

/// A valid mobile-capable number in E.164 (`+17707651750`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneE164(String);

impl PhoneE164 {
    /// `value` as written by a client: with a `+` prefix, or national in `default`.
    pub fn parse(value: &str, default: CountryCode) -> Result<Self, ParseError> {
        let value = value.trim();
        if value.is_empty() || value.len() > 32 {
            return Err(ParseError::new("must be a phone number"));
        }
        let number = phonenumber::parse(Some(default.0), value)
            .map_err(|_| ParseError::new("not a phone number"))?;
        if !phonenumber::is_valid(&number) {
            return Err(ParseError::new(format!(
                "not a valid phone number (national numbers are read as {})",
                default.as_str()
            )));
        }
        Ok(Self(number.format().mode(Mode::E164).to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As the gateway's samples write it: national digits when the number is of the
    /// site's country (`7707651750`), E.164 otherwise.
    pub fn for_gateway(&self, site_country: CountryCode) -> String {
        let site_code = phonenumber::metadata::DATABASE
            .by_id(site_country.as_str())
            .map(|m| m.country_code());
        match phonenumber::parse(None, &self.0) {
            // The same calling code (all of +1 is one numbering plan): E.164 minus "+"
            // and the code is the national significant number, leading zeros included.
            Ok(number) if Some(number.code().value()) == site_code => {
                let code_digits = number.code().value().to_string().len();
                self.0.get(1 + code_digits..).unwrap_or(&self.0).to_owned()
            }
            _ => self.0.clone(),
        }
    }
}

impl TryFrom<String> for PhoneE164 {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, ParseError> {
        if !value.starts_with('+') {
            return Err(ParseError::new("stored numbers are E.164"));
        }
        Self::parse(&value, CountryCode(country::Id::US))
    }
}

impl From<PhoneE164> for String {
    fn from(value: PhoneE164) -> Self {
        value.0
    }
}

impl fmt::Display for PhoneE164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> CountryCode {
        CountryCode::parse("us").unwrap()
    }

    #[test]
    fn the_contracts_number_is_read_in_the_sites_country() {
        let phone = PhoneE164::parse("7707651750", us()).unwrap();
        assert_eq!(phone.as_str(), "+17707651750");
        assert_eq!(phone.for_gateway(us()), "7707651750");
        for same in ["+1 770-765-1750", "(770) 765-1750", "+17707651750"] {
            assert_eq!(PhoneE164::parse(same, us()).unwrap(), phone, "{same}");
        }
        let uk = PhoneE164::parse("+44 7911 123456", us()).unwrap();
        assert_eq!(uk.as_str(), "+447911123456");
        assert_eq!(uk.for_gateway(us()), "+447911123456");
        assert_eq!(
            uk.for_gateway(CountryCode::parse("GB").unwrap()),
            "7911123456"
        );
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in [
            "",
            "abc",
            "123",
            "+999999999999",
            "7707651750".repeat(4).as_str(),
        ] {
            assert!(PhoneE164::parse(bad, us()).is_err(), "{bad}");
        }
        assert!(CountryCode::parse("USA").is_err());
        assert!(CountryCode::parse("ZZ").is_err());
    }
}
