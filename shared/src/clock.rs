//! Timestamps as the table stores them: UTC, fixed width, so they sort as strings.

use time::{OffsetDateTime, format_description::FormatItem, macros::format_description};

const SORTABLE: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// `2026-11-22T10:36:10.123456Z`: RFC 3339, fixed width, so lexical order is time order.
pub fn sortable(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(SORTABLE)
        .expect("a UTC timestamp always formats")
}

/// Parses any RFC 3339 timestamp (any offset).
pub fn parse_rfc3339(value: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_timestamps_are_fixed_width_utc() {
        let at = parse_rfc3339("2026-11-22T12:00:00+02:00").unwrap();
        assert_eq!(sortable(at), "2026-11-22T10:00:00.000000Z");
        let later = parse_rfc3339("2026-11-22T10:00:00.5Z").unwrap();
        assert!(sortable(later) > sortable(at));
    }
}
