//! Usage metering and the invoice rule (signed-payload contract §5.1).
//!
//! **Metering.** A shop's activity is counted per UTC day where it happens (page views
//! and their users by the tracking route, in `analytics`; SMS segments of the loyalty
//! sites billed to the shop by `account-timeline` from `sms.sent`; seats by SSO, as
//! `SEAT#` items in the shop's partition). After a day closes (02:00 UTC the next day: activity after
//! midnight already counts on the next day) the `usage-records` job prices it with the
//! shop's confirmed plans into usage records, stores them as the shop's *metered day*
//! (one item, written once: running the job again for a day changes nothing) and, in
//! the same transaction, a delivery of `POST <base>/releva/webhooks/usageRecords` to the
//! partner.
//!
//! **Pricing** (each confirmed plan, at the version the shop confirmed):
//! - *Counters* (`pageViews`, message types) are the day's increment,
//!   `preaggregated: false`; *gauges* (`seats`, `subscribers`, `monthlyActiveUsers`)
//!   are the period-to-date value, `preaggregated: true` (summing daily gauges would bill
//!   a one-seat shop thirty times). `monthlyActiveUsers` is the distinct users of the
//!   period so far; `seats` the users with access when the day is metered.
//! - A plan's *tiers* on a unit are price steps: the shop pays the price of the highest
//!   tier whose `treshold` its usage of the unit reached (the lowest tier otherwise), as
//!   one record `amount: 1`, `preaggregated: true`, and that tier's threshold units are
//!   included: the plan's *dynamic* price on the same unit bills only the units above it.
//! - `billableAmount` is `amount` less the units free through the trial (every day that
//!   ends by `trialEndsAt` is free), the tier threshold, or a cap. Caps
//!   (`fixedPriceCapUSD` on tier records, `dynamicPriceCapUSD` on the others) free whole
//!   units, so the period's total of each kind stays at or under its cap.
//! - `totalPrice` = `billableAmount` × `unitPrice`, exact decimals.
//! - `reference` names the plan and the pricing component (`AI Hub #1: seats usage`,
//!   `Mail & Push #2: subscribers tier`): never the version or tier name, so a tier
//!   change or a re-confirmed plan within a period stays one line.
//! - A day wholly inside a pause, a day outside the billing periods, and accounts a
//!   marketplace bills get no records. A unit without a source in the hub (today
//!   `subscribers`, WhatsApp and Viber messages) gets no dynamic records; its tiers
//!   price at the lowest.
//!
//! **Invoice rule** ([`statement`]): one line per unique `reference` among the records
//! of the period's days; `preaggregated: true` takes the latest record, `false` sums
//! the `amount`, `billableAmount` and `totalPrice` of the records outside the trial (the
//! contract says "sum of amounts and unitPrices"; a sum of unit prices means nothing, so
//! the line shows the latest unit price). Each kind's total is then held to its cap.
//!
//! A day belongs to the billing period that holds its last instant; a period's days run
//! from its start's date to the day before its end.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime};

use crate::{
    billing::BillingPeriod,
    clock,
    domain::AccountId,
    plans::Plan,
    store::{Keys, Query, Record, StoreError, Table, keys},
};

#[cfg(feature = "outbound")]
pub mod meter;

/// The usage types of the contract (`type` of a usage record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UsageType {
    MonthlyActiveUsers,
    Subscribers,
    PageViews,
    WhatsappMessages,
    TextMessages,
    Seats,
    ViberTextMessages,
    ViberMultimediaMessages,
}

impl UsageType {
    pub const ALL: [UsageType; 8] = [
        UsageType::MonthlyActiveUsers,
        UsageType::Subscribers,
        UsageType::PageViews,
        UsageType::WhatsappMessages,
        UsageType::TextMessages,
        UsageType::Seats,
        UsageType::ViberTextMessages,
        UsageType::ViberMultimediaMessages,
    ];

    pub fn name(self) -> &'static str {
        match self {
            UsageType::MonthlyActiveUsers => "monthlyActiveUsers",
            UsageType::Subscribers => "subscribers",
            UsageType::PageViews => "pageViews",
            UsageType::WhatsappMessages => "whatsappMessages",
            UsageType::TextMessages => "textMessages",
            UsageType::Seats => "seats",
            UsageType::ViberTextMessages => "viberTextMessages",
            UsageType::ViberMultimediaMessages => "viberMultimediaMessages",
        }
    }

    /// The type a plan's `unit` names, if it is one of the contract's.
    pub fn parse(unit: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == unit)
    }

    /// Gauges are reported as the period-to-date value (`preaggregated: true`).
    pub fn is_gauge(self) -> bool {
        matches!(
            self,
            UsageType::Seats | UsageType::Subscribers | UsageType::MonthlyActiveUsers
        )
    }
}

/// One usage record, exactly as the contract's webhook carries it (decimal strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecord {
    pub day: String,
    #[serde(rename = "type")]
    pub usage_type: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub unit_price: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub billable_amount: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub total_price: Decimal,
    pub reference: String,
    pub preaggregated: bool,
}

/// Which price a record is: a tier's (held to `fixedPriceCapUSD`) or a usage price
/// (held to `dynamicPriceCapUSD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    Fixed,
    Dynamic,
}

/// A record as the hub keeps it: the wire record and its component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeteredRecord {
    pub record: UsageRecord,
    pub component: Component,
}

/// A shop's metered day: its records, written once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeteredDay {
    pub account_id: AccountId,
    pub day: String,
    pub records: Vec<MeteredRecord>,
    /// The webhook that carries them, when the partner has an endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    pub metered_at: String,
}

impl Record for MeteredDay {
    fn keys(&self) -> Keys {
        keys::usage_day(self.account_id, &self.day)
    }
}

/// What a shop used, as of the end of one day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Counters: the day's increment; gauges: the period-to-date value. Types the hub
    /// has no source for are absent.
    pub of_day: BTreeMap<UsageType, u64>,
    /// Counters: the period's total before the day.
    pub before: BTreeMap<UsageType, u64>,
}

impl Usage {
    /// How far the period's usage of `unit` got by the end of the day (tier choice).
    fn level(&self, unit: UsageType) -> u64 {
        let of_day = self.of_day.get(&unit).copied().unwrap_or(0);
        if unit.is_gauge() {
            of_day
        } else {
            self.before.get(&unit).copied().unwrap_or(0) + of_day
        }
    }
}

/// A day closes this long after its midnight (UTC): 02:00 the next day.
pub const CLOSES_AFTER: Duration = Duration::hours(26);

/// The last day closed at `now`.
pub fn last_closed_day(now: OffsetDateTime) -> Date {
    (now - CLOSES_AFTER).date()
}

/// The day activity at `at` counts on, when it is counted at `now`: its own, or the
/// next open one when its own closed already (late activity).
pub fn counting_day(at: OffsetDateTime, now: OffsetDateTime) -> Date {
    let own = clock::in_range(at).unwrap_or(clock::LATEST).date();
    let first_open = last_closed_day(now).next_day().unwrap_or(own);
    own.max(first_open)
}

/// The day's end: the next midnight UTC.
fn day_end(day: Date) -> OffsetDateTime {
    day.next_day()
        .map(|d| d.midnight().assume_utc())
        .unwrap_or(clock::LATEST)
}

/// Whether the day is free through the trial (it ends by the trial's end).
pub fn in_trial(day: Date, trial_ends_at: OffsetDateTime) -> bool {
    day_end(day) <= trial_ends_at
}

/// The first and last day of a period (see the module's rule).
pub fn period_days(period: &BillingPeriod) -> (Date, Date) {
    (period.start.date(), (period.end - Duration::days(1)).date())
}

/// Whether `day` belongs to `period` (the period holds the day's last instant).
pub fn day_in(day: Date, period: &BillingPeriod) -> bool {
    let end = day_end(day);
    period.start < end && end <= period.end
}

pub fn parse_day(day: &str) -> Option<Date> {
    Date::parse(
        day,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

/// A day's records from the plans' prices, `earlier` being the records of the
/// period's previous days (for caps).
pub fn price_day(
    plans: &[Plan],
    period: &BillingPeriod,
    day: Date,
    usage: &Usage,
    earlier: &[MeteredRecord],
) -> Vec<MeteredRecord> {
    let trial = in_trial(day, period.trial_ends_at);
    let day_text = crate::analytics::day_string(day);
    let mut priced: Vec<MeteredRecord> = Vec::new();
    for plan in plans {
        let spec = &plan.spec;
        let label = format!("{} #{}", spec.name, spec.id);
        // Tier records, one per unit the plan has tiers on.
        let mut units: Vec<&str> = spec
            .tiered_pricings
            .iter()
            .map(|t| t.unit.as_str())
            .collect();
        units.dedup();
        let mut included: BTreeMap<&str, u64> = BTreeMap::new();
        for unit in units.iter().copied() {
            let mut tiers: Vec<_> = spec
                .tiered_pricings
                .iter()
                .filter(|t| t.unit == unit)
                .collect();
            tiers.sort_by_key(|t| t.threshold);
            let level = UsageType::parse(unit).map_or(0, |u| usage.level(u));
            let Some(tier) = tiers
                .iter()
                .rev()
                .find(|t| t.threshold <= level)
                .or(tiers.first())
            else {
                continue;
            };
            included.insert(unit, tier.threshold);
            let billable = if trial { Decimal::ZERO } else { Decimal::ONE };
            priced.push(record(
                &day_text,
                unit,
                tier.price.amount(),
                Decimal::ONE,
                billable,
                format!("{label}: {unit} tier"),
                true,
                Component::Fixed,
            ));
        }
        for dynamic in &spec.dynamic_pricings {
            let Some(unit) = UsageType::parse(&dynamic.unit) else {
                continue;
            };
            let Some(&of_day) = usage.of_day.get(&unit) else {
                continue;
            };
            let free = included.get(dynamic.unit.as_str()).copied().unwrap_or(0);
            let (amount, billable) = if unit.is_gauge() {
                (of_day, of_day.saturating_sub(free))
            } else {
                if of_day == 0 {
                    continue;
                }
                let before = usage.before.get(&unit).copied().unwrap_or(0);
                let over = |n: u64| n.saturating_sub(free);
                (of_day, over(before + of_day) - over(before))
            };
            let billable = if trial { 0 } else { billable };
            priced.push(record(
                &day_text,
                unit.name(),
                dynamic.unit_price.amount(),
                Decimal::from(amount),
                Decimal::from(billable),
                format!("{label}: {} usage", unit.name()),
                unit.is_gauge(),
                Component::Dynamic,
            ));
        }
    }
    // Caps: each record in turn is held so its kind's period total stays within.
    let mut so_far: Vec<MeteredRecord> = earlier.to_vec();
    let mut out = Vec::with_capacity(priced.len());
    for mut next in priced {
        let cap = match next.component {
            Component::Fixed => period.fixed_price_cap_usd.as_ref(),
            Component::Dynamic => period.dynamic_price_cap_usd.as_ref(),
        }
        .map(|c| c.amount());
        if let Some(cap) = cap {
            so_far.push(next.clone());
            let totals = statement(&so_far, period.trial_ends_at, None, None);
            so_far.pop();
            let total = match next.component {
                Component::Fixed => totals.fixed_total,
                Component::Dynamic => totals.dynamic_total,
            };
            let unit_price = next.record.unit_price;
            if total > cap && unit_price > Decimal::ZERO {
                let excess_units = ((total - cap) / unit_price).ceil();
                let r = &mut next.record;
                r.billable_amount = (r.billable_amount - excess_units).max(Decimal::ZERO);
                r.total_price = (r.billable_amount * unit_price).normalize();
            }
        }
        so_far.push(next.clone());
        out.push(next);
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn record(
    day: &str,
    usage_type: &str,
    unit_price: Decimal,
    amount: Decimal,
    billable: Decimal,
    reference: String,
    preaggregated: bool,
    component: Component,
) -> MeteredRecord {
    MeteredRecord {
        record: UsageRecord {
            day: day.to_owned(),
            usage_type: usage_type.to_owned(),
            unit_price: unit_price.normalize(),
            amount: amount.normalize(),
            billable_amount: billable.normalize(),
            total_price: (billable * unit_price).normalize(),
            reference,
            preaggregated,
        },
        component,
    }
}

/// One line of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    pub reference: String,
    pub usage_type: String,
    pub component: Component,
    pub preaggregated: bool,
    pub unit_price: Decimal,
    pub amount: Decimal,
    pub billable_amount: Decimal,
    pub total_price: Decimal,
    /// The records the line counts (the latest one for preaggregated lines).
    pub records: usize,
}

/// A billing period's invoice, by the contract's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub lines: Vec<StatementLine>,
    /// Each kind's total, held to its cap.
    pub fixed_total: Decimal,
    pub dynamic_total: Decimal,
    pub fixed_capped: bool,
    pub dynamic_capped: bool,
    pub total: Decimal,
}

/// The statement of `records` (the records of one period's days), lines in order of
/// reference.
pub fn statement(
    records: &[MeteredRecord],
    trial_ends_at: OffsetDateTime,
    fixed_cap: Option<Decimal>,
    dynamic_cap: Option<Decimal>,
) -> Statement {
    let mut lines: BTreeMap<&str, StatementLine> = BTreeMap::new();
    let mut latest_day: BTreeMap<&str, &str> = BTreeMap::new();
    for metered in records {
        let r = &metered.record;
        if r.preaggregated {
            // The latest record (by day; a later record of the same day wins).
            if latest_day
                .get(r.reference.as_str())
                .is_some_and(|seen| *seen > r.day.as_str())
            {
                continue;
            }
            latest_day.insert(&r.reference, &r.day);
            lines.insert(&r.reference, line(metered, 1));
            continue;
        }
        if parse_day(&r.day).is_some_and(|d| in_trial(d, trial_ends_at)) {
            continue;
        }
        let entry = lines.entry(&r.reference).or_insert_with(|| StatementLine {
            amount: Decimal::ZERO,
            billable_amount: Decimal::ZERO,
            total_price: Decimal::ZERO,
            ..line(metered, 0)
        });
        entry.unit_price = r.unit_price;
        entry.amount += r.amount;
        entry.billable_amount += r.billable_amount;
        entry.total_price += r.total_price;
        entry.records += 1;
    }
    let lines: Vec<StatementLine> = lines
        .into_values()
        .map(|mut l| {
            l.amount = l.amount.normalize();
            l.billable_amount = l.billable_amount.normalize();
            l.total_price = l.total_price.normalize();
            l
        })
        .collect();
    let sum = |component| {
        lines
            .iter()
            .filter(|l| l.component == component)
            .map(|l| l.total_price)
            .sum::<Decimal>()
    };
    let held = |total: Decimal, cap: Option<Decimal>| match cap {
        Some(cap) if total > cap => (cap.normalize(), true),
        _ => (total.normalize(), false),
    };
    let (fixed_total, fixed_capped) = held(sum(Component::Fixed), fixed_cap);
    let (dynamic_total, dynamic_capped) = held(sum(Component::Dynamic), dynamic_cap);
    Statement {
        lines,
        fixed_total,
        dynamic_total,
        fixed_capped,
        dynamic_capped,
        total: (fixed_total + dynamic_total).normalize(),
    }
}

fn line(metered: &MeteredRecord, records: usize) -> StatementLine {
    let r = &metered.record;
    StatementLine {
        reference: r.reference.clone(),
        usage_type: r.usage_type.clone(),
        component: metered.component,
        preaggregated: r.preaggregated,
        unit_price: r.unit_price,
        amount: r.amount,
        billable_amount: r.billable_amount,
        total_price: r.total_price,
        records,
    }
}

/// The stored records of a shop's days from `first` to `last`, both included.
pub async fn records_between(
    table: &Table,
    account: AccountId,
    first: Date,
    last: Date,
) -> Result<Vec<MeteredRecord>, StoreError> {
    if last < first {
        return Ok(Vec::new());
    }
    let day_key = |d| {
        format!(
            "{}{}",
            keys::USAGE_DAY_PREFIX,
            crate::analytics::day_string(d)
        )
    };
    let days: Vec<MeteredDay> = table
        .query_all(
            &Query::partition(keys::account_partition(account))
                .sort_between(day_key(first), day_key(last)),
        )
        .await?;
    Ok(days.into_iter().flat_map(|d| d.records).collect())
}

#[cfg(test)]
mod tests;
