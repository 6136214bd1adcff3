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

/// ISO-8601 as partners send it: a full RFC 3339 date-time (any offset), or a date
/// (midnight UTC).
pub fn parse_iso8601(value: &str) -> Option<OffsetDateTime> {
    if let Some(at) = parse_rfc3339(value) {
        return Some(at);
    }
    let date = time::Date::parse(value, format_description!("[year]-[month]-[day]")).ok()?;
    Some(date.midnight().assume_utc())
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

    #[test]
    fn iso_8601_dates_and_date_times_with_any_offset() {
        let at = parse_iso8601("2026-12-01T00:00:00-05:00").unwrap();
        assert_eq!(sortable(at), "2026-12-01T05:00:00.000000Z");
        let day = parse_iso8601("2026-12-01").unwrap();
        assert_eq!(sortable(day), "2026-12-01T00:00:00.000000Z");
        assert!(parse_iso8601("next week").is_none());
    }
}
