//! EventBridge Scheduler's `cron(minutes hours day-of-month month day-of-week year)`, in
//! UTC, for the stand-in's timers. Supported per field: `*`, `?`, values, names (`JAN`,
//! `MON`), ranges `a-b`, lists `a,b` and steps `*/n`, `a/n`, `a-b/n`; day-of-week is 1-7
//! for SUN-SAT as on AWS. `L`, `W` and `#` are refused with a clear error.

use time::{Duration, OffsetDateTime, PrimitiveDateTime, Time};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days_of_month: Option<Vec<bool>>,
    months: Vec<bool>,
    days_of_week: Option<Vec<bool>>,
    years: Option<(i32, i32, Vec<bool>)>,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Parses one field into a set over `min..=max`; `None` for `?` (no constraint).
fn field(
    text: &str,
    min: u32,
    max: u32,
    names: &[&str],
    name: &str,
) -> Result<Option<Vec<bool>>, String> {
    if text == "?" {
        return Ok(None);
    }
    if text.contains(['L', 'W', '#']) && !names.iter().any(|n| text.contains(n)) {
        return Err(format!(
            "{name}: L, W and # are not supported by the stand-in"
        ));
    }
    let value = |v: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
            return Ok(min + i as u32);
        }
        v.parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| format!("{name}: '{v}' is not in {min}-{max}"))
    };
    let mut set = vec![false; (max + 1) as usize];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (
                range,
                step.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{name}: bad step in '{part}'"))?,
            ),
            None => (part, 1),
        };
        let (start, end) = match range {
            "*" => (min, max),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                // `a/n` runs from a to the end.
                None if part.contains('/') => (value(range)?, max),
                None => {
                    let v = value(range)?;
                    (v, v)
                }
            },
        };
        if start > end {
            return Err(format!("{name}: empty range '{range}'"));
        }
        for v in (start..=end).step_by(step as usize) {
            set[v as usize] = true;
        }
    }
    Ok(Some(set))
}

impl Cron {
    /// Parses `cron(...)`.
    pub fn parse(expression: &str) -> Result<Self, String> {
        let inner = expression
            .trim()
            .strip_prefix("cron(")
            .and_then(|s| s.strip_suffix(')'))
            .ok_or_else(|| format!("'{expression}' is not a cron(...) expression"))?;
        let fields: Vec<&str> = inner.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = fields[..] else {
            return Err(format!(
                "'{expression}' needs 6 fields: minutes hours day-of-month month day-of-week year"
            ));
        };
        let all = |f: Option<Vec<bool>>, name: &str| {
            f.ok_or_else(|| format!("{name}: ? only fits the day fields"))
        };
        let years = match field(year, 1970, 2199, &[], "year")? {
            None => None,
            Some(set) if set.iter().skip(1970).all(|b| *b) => None,
            Some(set) => Some((1970, 2199, set)),
        };
        Ok(Self {
            minutes: all(field(minutes, 0, 59, &[], "minutes")?, "minutes")?,
            hours: all(field(hours, 0, 23, &[], "hours")?, "hours")?,
            days_of_month: field(dom, 1, 31, &[], "day-of-month")?,
            months: all(field(month, 1, 12, &MONTHS, "month")?, "month")?,
            days_of_week: field(dow, 1, 7, &DAYS, "day-of-week")?,
            years,
        })
    }

    fn day_matches(&self, at: PrimitiveDateTime) -> bool {
        let dom = self
            .days_of_month
            .as_ref()
            .is_none_or(|set| set[at.day() as usize]);
        // 1 = Sunday, as on AWS.
        let weekday = at.weekday().number_from_sunday() as usize;
        let dow = self.days_of_week.as_ref().is_none_or(|set| set[weekday]);
        let year = self.years.as_ref().is_none_or(|(min, max, set)| {
            (*min..=*max).contains(&at.year()) && set[at.year() as usize]
        });
        dom && dow && year && self.months[u8::from(at.month()) as usize]
    }

    /// The first minute strictly after `after` (UTC) that the expression names.
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let after = after.to_offset(time::UtcOffset::UTC);
        let start = PrimitiveDateTime::new(
            after.date(),
            Time::from_hms(after.hour(), after.minute(), 0).ok()?,
        ) + Duration::minutes(1);
        let mut at = start;
        let limit = start + Duration::days(366 * 5);
        while at < limit {
            if !self.day_matches(at) {
                at = PrimitiveDateTime::new(at.date().next_day()?, Time::MIDNIGHT);
                continue;
            }
            if !self.hours[at.hour() as usize] {
                at = PrimitiveDateTime::new(at.date(), Time::from_hms(at.hour(), 0, 0).ok()?)
                    + Duration::hours(1);
                continue;
            }
            if !self.minutes[at.minute() as usize] {
                at += Duration::minutes(1);
                continue;
            }
            return Some(at.assume_utc());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        shared::clock::parse_rfc3339(text).unwrap()
    }

    fn next(expr: &str, after: &str) -> String {
        shared::clock::sortable(Cron::parse(expr).unwrap().next_after(at(after)).unwrap())
    }

    #[test]
    fn next_fire_times_in_utc() {
        assert_eq!(
            next("cron(* * * * ? *)", "2026-11-23T10:15:30Z"),
            "2026-11-23T10:16:00.000000Z"
        );
        assert_eq!(
            next("cron(0 12 * * ? *)", "2026-11-23T12:00:00Z"),
            "2026-11-24T12:00:00.000000Z"
        );
        assert_eq!(
            next("cron(0/15 * * * ? *)", "2026-11-23T10:16:00Z"),
            "2026-11-23T10:30:00.000000Z"
        );
        // Weekdays at 09:30 (MON-FRI): from a Friday evening to Monday.
        assert_eq!(
            next("cron(30 9 ? * MON-FRI *)", "2026-11-27T18:00:00Z"),
            "2026-11-30T09:30:00.000000Z"
        );
        // 1 = Sunday, as on AWS.
        assert_eq!(
            next("cron(0 8 ? * 1 *)", "2026-11-23T00:00:00Z"),
            "2026-11-29T08:00:00.000000Z"
        );
        assert_eq!(
            next("cron(0 2 1 JAN,JUL ? *)", "2026-11-23T00:00:00Z"),
            "2027-01-01T02:00:00.000000Z"
        );
        assert_eq!(
            next("cron(0 0 29 2 ? *)", "2026-03-01T00:00:00Z"),
            "2028-02-29T00:00:00.000000Z"
        );
        assert_eq!(
            Cron::parse("cron(0 0 1 1 ? 2020)")
                .unwrap()
                .next_after(at("2026-01-01T00:00:00Z")),
            None
        );
    }

    #[test]
    fn bad_expressions_are_named() {
        for bad in [
            "rate(1 minute)",
            "cron(* * * *)",
            "cron(60 * * * ? *)",
            "cron(* 24 * * ? *)",
            "cron(* * L * ? *)",
            "cron(* * ? * 6#3 *)",
            "cron(? * * * ? *)",
            "cron(*/0 * * * ? *)",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
    }
}
