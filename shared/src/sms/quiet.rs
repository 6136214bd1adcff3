//! Quiet hours: SMS go out only between `start` and `end` in the member's IANA time zone
//! (the tz database is compiled in with jiff: Lambda's image has none). Outside them a
//! job is due again at the next allowed minute.

use jiff::{Timestamp, tz::TimeZone};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::ParseError;

/// Minutes after local midnight; sending is allowed from `start` (inclusive) to `end`
/// (exclusive). `start > end` spans midnight (e.g. 22:00–06:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendingHours {
    pub start: u16,
    pub end: u16,
}

impl Default for SendingHours {
    /// 08:00–21:00.
    fn default() -> Self {
        Self {
            start: 8 * 60,
            end: 21 * 60,
        }
    }
}

/// `HH:MM` (24-hour) as minutes after midnight.
pub fn parse_clock(value: &str) -> Result<u16, ParseError> {
    let bad = || ParseError::new("must be HH:MM (24-hour), e.g. 08:00");
    let (h, m) = value.trim().split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

pub fn format_clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// An IANA time zone name the compiled-in database knows (`America/New_York`).
pub fn parse_time_zone(value: &str) -> Result<String, ParseError> {
    let value = value.trim();
    if value.is_empty() || value.len() > 64 {
        return Err(ParseError::new(
            "must be an IANA time zone such as America/New_York",
        ));
    }
    TimeZone::get(value)
        .map(|_| value.to_owned())
        .map_err(|_| ParseError::new("not an IANA time zone (e.g. America/New_York)"))
}

impl SendingHours {
    pub fn parse(start: &str, end: &str) -> Result<Self, ParseError> {
        let hours = Self {
            start: parse_clock(start)?,
            end: parse_clock(end)?,
        };
        if hours.start == hours.end {
            return Err(ParseError::new("start and end must differ"));
        }
        Ok(hours)
    }

    fn allows(&self, minute: u16) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }

    /// `None` when `now` is inside the hours in `zone`; else when they next open.
    pub fn next_opening(&self, now: OffsetDateTime, zone: &str) -> Option<OffsetDateTime> {
        let tz = TimeZone::get(zone).unwrap_or(TimeZone::UTC);
        let instant = Timestamp::from_second(now.unix_timestamp()).ok()?;
        let local = instant.to_zoned(tz);
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        if self.allows(minute) {
            return None;
        }
        let today_opening = local
            .with()
            .hour((self.start / 60) as i8)
            .minute((self.start % 60) as i8)
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?;
        let opening = if today_opening.timestamp() > instant {
            today_opening
        } else {
            today_opening.tomorrow().ok()?
        };
        OffsetDateTime::from_unix_timestamp(opening.timestamp().as_second()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        crate::clock::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn quiet_hours_defer_to_the_next_opening_in_the_members_zone() {
        let hours = SendingHours::default();
        // 15:00 UTC is 10:00 in New York (EST): allowed.
        assert_eq!(
            hours.next_opening(at("2026-01-15T15:00:00Z"), "America/New_York"),
            None
        );
        // 03:00 UTC is 22:00 the day before in New York: next 08:00 local = 13:00 UTC.
        assert_eq!(
            hours.next_opening(at("2026-01-15T03:00:00Z"), "America/New_York"),
            Some(at("2026-01-15T13:00:00Z"))
        );
        // 11:00 UTC is 06:00 in New York: later the same day.
        assert_eq!(
            hours.next_opening(at("2026-01-15T11:00:00Z"), "America/New_York"),
            Some(at("2026-01-15T13:00:00Z"))
        );
        // Summer time (EDT, UTC-4): 08:00 local = 12:00 UTC.
        assert_eq!(
            hours.next_opening(at("2026-07-15T03:00:00Z"), "America/New_York"),
            Some(at("2026-07-15T12:00:00Z"))
        );
        // The end is exclusive: 21:00 local is quiet.
        assert!(
            hours
                .next_opening(at("2026-01-16T02:00:00Z"), "America/New_York")
                .is_some()
        );
    }

    #[test]
    fn hours_over_midnight_and_bad_input() {
        let night = SendingHours::parse("22:00", "06:00").unwrap();
        assert_eq!(night.next_opening(at("2026-01-15T23:00:00Z"), "UTC"), None);
        assert_eq!(night.next_opening(at("2026-01-15T05:59:00Z"), "UTC"), None);
        assert_eq!(
            night.next_opening(at("2026-01-15T12:00:00Z"), "UTC"),
            Some(at("2026-01-15T22:00:00Z"))
        );
        for bad in ["8:00", "24:00", "08:60", "0800", ""] {
            assert!(parse_clock(bad).is_err(), "{bad}");
        }
        assert!(SendingHours::parse("08:00", "08:00").is_err());
        assert!(parse_time_zone("Mars/Olympus").is_err());
        assert_eq!(
            parse_time_zone("Europe/Bucharest").unwrap(),
            "Europe/Bucharest"
        );
    }
}
