use serde::{Deserialize, Serialize};

use super::ParseError;

/// Money as the exact decimal text that was sent (`123.45`), never an `f64`; its
/// amount is a `rust_decimal::Decimal` for arithmetic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Price(String);

impl Price {
    const MAX_LEN: usize = 32;

    /// A non-negative decimal without exponent: `123`, `123.45`, `0.5`. Accepts a JSON
    /// number's own text or a JSON string holding one.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let text = text.trim();
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text)
            .trim();
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if text.len() > Self::MAX_LEN
            || !digits(int)
            || frac.is_some_and(|f| !digits(f))
            || rust_decimal::Decimal::from_str_exact(text).is_err()
        {
            return Err(ParseError::new(
                "must be a non-negative decimal number such as 123.45",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The amount, exactly (for sums and caps).
    pub fn amount(&self) -> rust_decimal::Decimal {
        rust_decimal::Decimal::from_str_exact(&self.0).unwrap_or_default()
    }

    /// The price as a JSON number, digit for digit (`15.99`, never `15.990000000000002`).
    pub fn to_json_number(&self) -> Result<Box<serde_json::value::RawValue>, serde_json::Error> {
        serde_json::value::RawValue::from_string(self.0.clone())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_exact_decimal_text() {
        assert_eq!(Price::parse("123.45").unwrap().as_str(), "123.45");
        assert_eq!(Price::parse("\"0.5\"").unwrap().as_str(), "0.5");
        for bad in ["-1", "1e3", "1.", ".5", "abc", ""] {
            assert!(Price::parse(bad).is_err(), "{bad}");
        }
    }
}
