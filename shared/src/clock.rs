//! Timestamps as the table stores them: UTC, fixed width, so they sort as strings.
//!
//! The hub's time range is the years 0001 to 9999 in UTC: every parser here refuses a
//! value outside it (`9999-12-31T23:59:59-23:59` is year 10000 in UTC), so a timestamp
//! that got in always converts, formats and compares without panicking.

//!
//! "Now" is the hub's clock ([`now`]): the system's on Lambda; in the local stand-in the
//! stand-in's own [`Clock`], which it moves forward (`POST /_local/clock`) so that
//! behaviour taking days is tested in seconds. Every read of the time in the hub goes
//! through [`now`] (a test refuses the system's clock anywhere else).

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
};

use time::{OffsetDateTime, UtcOffset, format_description::FormatItem, macros::format_description};

const SORTABLE: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

tokio::task_local! {
    /// The clock of the stand-in whose work this task is doing. A task-local rather than
    /// a process global: tests run several stand-ins in one process, each with its own
    /// time.
    static CLOCK: Clock;
}

/// The hub's "now": the clock of the stand-in running this task, else the system's.
pub fn now() -> OffsetDateTime {
    CLOCK.try_with(Clock::now).unwrap_or_else(|_| system_now())
}

/// The system's clock: read here and nowhere else.
fn system_now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A clock that runs with the system's, ahead of it by an offset that only grows: time
/// moved forward never runs back.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Microseconds ahead of the system clock.
    ahead: Arc<AtomicI64>,
}

/// Why a clock was not moved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("{0} is earlier than the clock's now: the clock only moves forward")]
    Backwards(String),
    #[error("{0} is outside the hub's time range (years 0001 to 9999)")]
    OutOfRange(String),
}

impl Clock {
    /// A clock that starts at the system's time.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn now(&self) -> OffsetDateTime {
        let ahead = time::Duration::microseconds(self.ahead.load(Ordering::SeqCst));
        system_now()
            .checked_add(ahead)
            .and_then(in_range)
            .unwrap_or(LATEST)
    }

    /// Moves the clock to `at`, which must not be earlier than its now.
    pub fn set(&self, at: OffsetDateTime) -> Result<OffsetDateTime, ClockError> {
        let at = in_range(at).ok_or_else(|| ClockError::OutOfRange(at.to_string()))?;
        let mut current = self.ahead.load(Ordering::SeqCst);
        loop {
            let now = system_now();
            let ahead_now = now + time::Duration::microseconds(current);
            if at < ahead_now {
                return Err(ClockError::Backwards(sortable(at)));
            }
            let wanted = i64::try_from((at - now).whole_microseconds())
                .map_err(|_| ClockError::OutOfRange(sortable(at)))?;
            match self
                .ahead
                .compare_exchange(current, wanted, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Ok(at),
                Err(moved) => current = moved,
            }
        }
    }

    /// Moves the clock to `at` unless it is already there or later (real time passes
    /// while runs fired on the way take their time); answers its now.
    pub fn move_at_least_to(&self, at: OffsetDateTime) -> OffsetDateTime {
        match self.set(at) {
            Ok(at) => at,
            Err(_) => self.now(),
        }
    }

    /// Runs `future` with this clock as the hub's "now" (see [`now`]). Tasks the future
    /// spawns do not inherit it: scope them too.
    pub async fn scope<F: Future>(&self, future: F) -> F::Output {
        CLOCK.scope(self.clone(), future).await
    }

    /// [`Clock::scope`] taking the clock, for a future to spawn.
    pub fn scope_owned<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        CLOCK.scope(self, future)
    }
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

    /// Every read of the time goes through [`now`], so the stand-in's clock is the hub's:
    /// no other file of the workspace reads the system's.
    #[test]
    fn nothing_but_this_module_reads_the_system_clock() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let this = std::path::Path::new(file!())
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let forbidden = [
            ["OffsetDateTime", "::now_utc"].concat(),
            ["SystemTime", "::now"].concat(),
            ["Utc", "::now"].concat(),
            ["UtcDateTime", "::now"].concat(),
        ];
        let mut found = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if path.is_dir() {
                    if !name.starts_with('.') && name != "target" && name != "node_modules" {
                        stack.push(path);
                    }
                    continue;
                }
                if !name.ends_with(".rs") {
                    continue;
                }
                let is_this =
                    name == this && path.parent().is_some_and(|p| p.ends_with("shared/src"));
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                for (number, line) in text.lines().enumerate() {
                    if !is_this && forbidden.iter().any(|f| line.contains(f.as_str())) {
                        found.push(format!(
                            "{}:{}: {}",
                            path.display(),
                            number + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "read the time with shared::clock::now(), the hub's clock:\n{}",
            found.join("\n")
        );
    }

    #[tokio::test]
    async fn a_clock_moves_forward_only_and_is_now_within_its_scope() {
        let clock = Clock::new();
        let start = clock.now();
        let later = start + time::Duration::days(400);
        assert_eq!(clock.set(later), Ok(later));
        assert!(clock.now() >= later);
        assert!(matches!(clock.set(start), Err(ClockError::Backwards(_))));
        assert!(clock.now() >= later, "a refused move changes nothing");
        let inside = clock.scope(async { now() }).await;
        assert!(inside >= later);
        // Outside any scope, and in another stand-in's, time is their own.
        assert!(now() < later);
        assert!(Clock::new().scope(async { now() }).await < later);
    }

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
