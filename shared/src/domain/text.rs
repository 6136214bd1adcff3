//! Free text the hub stores (names, address lines, product names, templates): every
//! such field has a documented maximum, so no accepted request can grow an item towards
//! DynamoDB's 400 KB limit or a hub event towards EventBridge's 256 KB.

use super::ParseError;

/// The longest free text one field may hold, in characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// The longest URL the hub stores, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// Free text: trimmed, at most `max_chars` characters, no control characters. Blank
/// text is `None` (the caller decides whether the field is required).
pub fn bounded_text(value: &str, max_chars: usize) -> Result<Option<String>, ParseError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > max_chars {
        return Err(ParseError::new(format!(
            "must be at most {max_chars} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ParseError::new("must not contain control characters"));
    }
    Ok(Some(value.to_owned()))
}

/// [`bounded_text`] with the hub's default maximum.
pub fn free_text(value: &str) -> Result<Option<String>, ParseError> {
    bounded_text(value, MAX_TEXT_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_bounded_and_printable() {
        assert_eq!(free_text("  Ana ").unwrap().as_deref(), Some("Ana"));
        assert_eq!(free_text("   ").unwrap(), None);
        assert!(free_text(&"é".repeat(MAX_TEXT_CHARS)).is_ok());
        let err = free_text(&"é".repeat(MAX_TEXT_CHARS + 1)).unwrap_err();
        assert_eq!(err.0, "must be at most 256 characters");
        assert!(free_text("a\u{0}b").is_err());
        assert!(free_text("line\nbreak").is_err());
    }
}
