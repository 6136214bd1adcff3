//! Timestamps as the table stores them: UTC, fixed width, so they sort as strings.
//!
//! The hub's time range is the years 0001 to 9999 in UTC: every parser here refuses a
//! value outside it (`9999-12-31T23:59:59-23:59` is year 10000 in UTC), so a timestamp
//! that got in always converts, formats and compares without panicking.

use time::{OffsetDateTime, UtcOffset, format_description::FormatItem, macros::format_description};

const SORTABLE: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The first and the last instant of the hub's time range.
pub const EARLIEST: OffsetDateTime = time::macros::datetime!(0001-01-01 00:00:00 UTC);
pub const LATEST: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59.999999 UTC);

/// `at` in UTC, if it lies in the hub's time range.
pub fn in_range(at: OffsetDateTime) -> Option<OffsetDateTime> {
    at.checked_to_offset(UtcOffset::UTC)
        .filter(|utc| (EARLIEST..=LATEST).contains(utc))
}

/// `at + by`, if that stays in the hub's time range.
pub fn checked_add(at: OffsetDateTime, by: std::time::Duration) -> Option<OffsetDateTime> {
    let by = time::Duration::try_from(by).ok()?;
    at.checked_add(by).and_then(in_range)
}

/// `2026-11-22T10:36:10.123456Z`: RFC 3339, fixed width, so lexical order is time order.
/// A value outside the hub's range (only arithmetic could make one: the parsers refuse
/// them) is clamped to its end rather than formatted with five digits or a sign.
pub fn sortable(at: OffsetDateTime) -> String {
    let utc = in_range(at).unwrap_or(if at < EARLIEST { EARLIEST } else { LATEST });
    utc.format(SORTABLE)
        .unwrap_or_else(|_| String::from("9999-12-31T23:59:59.999999Z"))
}

const RFC3339_MILLIS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// `2022-10-22T00:00:00.000Z`: as the signed-payload contract writes dates.
pub fn rfc3339_millis(at: OffsetDateTime) -> String {
    let utc = in_range(at).unwrap_or(if at < EARLIEST { EARLIEST } else { LATEST });
    utc.format(RFC3339_MILLIS)
        .unwrap_or_else(|_| String::from("9999-12-31T23:59:59.999Z"))
}

/// Parses any RFC 3339 timestamp (any offset) in the hub's time range.
pub fn parse_rfc3339(value: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(in_range)
}

/// ISO-8601 as partners send it: a full RFC 3339 date-time (any offset), or a date
/// (midnight UTC).
pub fn parse_iso8601(value: &str) -> Option<OffsetDateTime> {
    if let Some(at) = parse_rfc3339(value) {
        return Some(at);
    }
    let date = time::Date::parse(value, format_description!("[year]-[month]-[day]")).ok()?;
    in_range(date.midnight().assume_utc())
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

    #[test]
    fn values_outside_the_range_are_refused_not_panicked_on() {
        // Valid RFC 3339, but year 10000 in UTC.
        assert!(parse_rfc3339("9999-12-31T23:59:59-23:59").is_none());
        assert!(parse_iso8601("9999-12-31T23:59:59-23:59").is_none());
        assert!(parse_rfc3339("0000-01-01T00:00:00Z").is_none());
        assert!(parse_rfc3339("0001-01-01T00:00:00+01:00").is_none());
        let last = parse_rfc3339("9999-12-31T23:59:59Z").unwrap();
        assert_eq!(sortable(last), "9999-12-31T23:59:59.000000Z");
        assert!(checked_add(last, std::time::Duration::from_secs(1)).is_none());
        assert!(checked_add(last, std::time::Duration::MAX).is_none());
        // Arithmetic past the end clamps instead of panicking.
        let past = time::macros::datetime!(9999-12-31 23:59:59 -01:00);
        assert_eq!(sortable(past), "9999-12-31T23:59:59.999999Z");
    }
}
