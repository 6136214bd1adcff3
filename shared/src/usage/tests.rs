//! The pricing and invoice rules, on hand-worked periods.

use super::*;
use crate::{
    domain::Price,
    plans::{DynamicPricing, PlanSpec, TieredPricing},
};

fn at(s: &str) -> OffsetDateTime {
    clock::parse_rfc3339(s).unwrap()
}

fn day(s: &str) -> Date {
    parse_day(s).unwrap()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

/// 22 Oct → 22 Nov 2022, a 5-day trial (ends 27 Oct 00:00).
fn period(dynamic_cap: Option<&str>, fixed_cap: Option<&str>) -> BillingPeriod {
    BillingPeriod {
        start: at("2022-10-22T00:00:00Z"),
        end: at("2022-11-22T00:00:00Z"),
        trial_days: 5,
        trial_ends_at: at("2022-10-27T00:00:00Z"),
        dynamic_price_cap_usd: dynamic_cap.map(|c| Price::parse(c).unwrap()),
        fixed_price_cap_usd: fixed_cap.map(|c| Price::parse(c).unwrap()),
    }
}

fn plan(id: u32, name: &str, tiers: &[(&str, u64, &str, &str)], dynamic: &[(&str, &str)]) -> Plan {
    Plan {
        spec: PlanSpec {
            id,
            name: name.into(),
            summary: "s".into(),
            description: String::new(),
            allowed_actions: Vec::new(),
            tiered_pricings: tiers
                .iter()
                .map(|(name, threshold, price, unit)| TieredPricing {
                    name: (*name).into(),
                    threshold: *threshold,
                    price: Price::parse(price).unwrap(),
                    unit: (*unit).into(),
                })
                .collect(),
            dynamic_pricings: dynamic
                .iter()
                .map(|(unit, price)| DynamicPricing {
                    unit: (*unit).into(),
                    unit_price: Price::parse(price).unwrap(),
                })
                .collect(),
            kind: "modular".into(),
            trial_days: 0,
        },
        version: 1,
        published_at: "2022-01-01T00:00:00Z".into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn rec(
    day: &str,
    usage_type: &str,
    unit_price: &str,
    amount: &str,
    billable: &str,
    total: &str,
    reference: &str,
    component: Component,
) -> MeteredRecord {
    MeteredRecord {
        record: UsageRecord {
            day: day.into(),
            usage_type: usage_type.into(),
            unit_price: dec(unit_price),
            amount: dec(amount),
            billable_amount: dec(billable),
            total_price: dec(total),
            reference: reference.into(),
            preaggregated: UsageType::parse(usage_type).is_some_and(UsageType::is_gauge)
                || component == Component::Fixed,
        },
        component,
    }
}

fn usage(of_day: &[(UsageType, u64)], before: &[(UsageType, u64)]) -> Usage {
    Usage {
        of_day: of_day.iter().copied().collect(),
        before: before.iter().copied().collect(),
    }
}

const SEATS: &str = "AI Hub #1: seats usage";
const VIEWS: &str = "Web #3: pageViews usage";
const TIER: &str = "Mail & Push #2: subscribers tier";

/// A period with a trial straddling its start and several records per reference.
fn worked_records() -> Vec<MeteredRecord> {
    use Component::*;
    vec![
        // In the trial: free, and left out of the sums.
        rec(
            "2022-10-25",
            "seats",
            "19.99",
            "1",
            "0",
            "0",
            SEATS,
            Dynamic,
        ),
        rec(
            "2022-10-25",
            "pageViews",
            "0.001",
            "500",
            "0",
            "0",
            VIEWS,
            Dynamic,
        ),
        rec(
            "2022-10-26",
            "subscribers",
            "15.99",
            "1",
            "0",
            "0",
            TIER,
            Fixed,
        ),
        // After it.
        rec(
            "2022-10-27",
            "pageViews",
            "0.001",
            "1000",
            "1000",
            "1",
            VIEWS,
            Dynamic,
        ),
        rec(
            "2022-11-01",
            "seats",
            "19.99",
            "3",
            "3",
            "59.97",
            SEATS,
            Dynamic,
        ),
        rec(
            "2022-11-05",
            "pageViews",
            "0.001",
            "2500",
            "2500",
            "2.5",
            VIEWS,
            Dynamic,
        ),
        rec(
            "2022-11-21",
            "seats",
            "19.99",
            "2",
            "2",
            "39.98",
            SEATS,
            Dynamic,
        ),
        rec(
            "2022-11-21",
            "subscribers",
            "15.99",
            "1",
            "1",
            "15.99",
            TIER,
            Fixed,
        ),
    ]
}

#[test]
fn the_statement_takes_the_latest_gauge_and_sums_counters_outside_the_trial() {
    let p = period(None, None);
    let s = statement(&worked_records(), p.trial_ends_at, None, None);
    let line = |reference: &str| s.lines.iter().find(|l| l.reference == reference).unwrap();
    assert_eq!(s.lines.len(), 3, "one line per reference");
    // Seats: the latest record (21 Nov: 2 seats), not a sum of 1 + 3 + 2.
    let seats = line(SEATS);
    assert_eq!(
        (
            seats.amount,
            seats.billable_amount,
            seats.total_price,
            seats.records
        ),
        (dec("2"), dec("2"), dec("39.98"), 1)
    );
    // Page views: 1000 + 2500 (the 500 of 25 Oct fell in the trial).
    let views = line(VIEWS);
    assert_eq!(
        (
            views.amount,
            views.billable_amount,
            views.total_price,
            views.records
        ),
        (dec("3500"), dec("3500"), dec("3.5"), 2)
    );
    assert_eq!(views.unit_price, dec("0.001"));
    // The tier: its latest record, billed once.
    assert_eq!(line(TIER).total_price, dec("15.99"));
    assert_eq!(s.fixed_total, dec("15.99"));
    assert_eq!(s.dynamic_total, dec("43.48"));
    assert_eq!(s.total, dec("59.47"));
    assert!(!s.fixed_capped && !s.dynamic_capped);

    // Caps hold each kind's total: 43.48 of usage to 40, the tier under its 20.
    let capped = statement(
        &worked_records(),
        p.trial_ends_at,
        Some(dec("20")),
        Some(dec("40")),
    );
    assert_eq!(capped.dynamic_total, dec("40"));
    assert!(capped.dynamic_capped);
    assert_eq!(capped.fixed_total, dec("15.99"));
    assert!(!capped.fixed_capped);
    assert_eq!(capped.total, dec("55.99"));

    // A period whose trial outlasts it bills its counters nothing.
    let long_trial = statement(&worked_records(), at("2022-12-01T00:00:00Z"), None, None);
    assert_eq!(
        long_trial.lines.iter().find(|l| l.reference == VIEWS),
        None,
        "no counter record outside the trial"
    );
}

#[test]
fn days_belong_to_the_period_holding_their_last_instant_and_the_trial_frees_whole_days() {
    let p = period(None, None);
    assert!(day_in(day("2022-10-22"), &p));
    assert!(day_in(day("2022-11-21"), &p));
    assert!(
        !day_in(day("2022-11-22"), &p),
        "the next period's first day"
    );
    assert!(!day_in(day("2022-10-21"), &p));
    assert_eq!(period_days(&p), (day("2022-10-22"), day("2022-11-21")));
    let afternoon = BillingPeriod {
        start: at("2022-10-22T13:00:00Z"),
        end: at("2022-11-22T13:00:00Z"),
        ..p.clone()
    };
    assert!(day_in(day("2022-10-22"), &afternoon));
    assert!(!day_in(day("2022-11-22"), &afternoon));
    assert!(in_trial(day("2022-10-26"), p.trial_ends_at));
    assert!(!in_trial(day("2022-10-27"), p.trial_ends_at));
}

#[test]
fn gauges_report_the_period_to_date_value_and_the_trial_frees_them() {
    let plans = [plan(1, "AI Hub", &[], &[("seats", "19.99")])];
    let p = period(None, None);
    let today = usage(&[(UsageType::Seats, 3)], &[]);
    let in_trial = price_day(&plans, &p, day("2022-10-23"), &today, &[]);
    assert_eq!(in_trial.len(), 1);
    let r = &in_trial[0].record;
    assert_eq!(
        (r.amount, r.billable_amount, r.total_price, r.preaggregated),
        (dec("3"), dec("0"), dec("0"), true)
    );
    let after = price_day(&plans, &p, day("2022-11-02"), &today, &[]);
    let r = &after[0].record;
    assert_eq!(
        serde_json::to_value(r).unwrap(),
        serde_json::json!({"day": "2022-11-02", "type": "seats", "unitPrice": "19.99",
            "amount": "3", "billableAmount": "3", "totalPrice": "59.97",
            "reference": SEATS, "preaggregated": true}),
        "the contract's shape, decimal strings"
    );
}

#[test]
fn the_tier_reached_sets_the_fixed_price_and_the_units_it_includes() {
    let plans = [plan(
        3,
        "Web",
        &[
            ("Base", 0, "10", "pageViews"),
            ("Pro", 10000, "50", "pageViews"),
        ],
        &[("pageViews", "0.001")],
    )];
    let p = period(None, None);
    // 9,500 before, 1,000 today: the Pro tier (10,000 included) is reached today, so
    // only the 500 views past 10,000 are billable.
    let u = usage(
        &[(UsageType::PageViews, 1000)],
        &[(UsageType::PageViews, 9500)],
    );
    let records = price_day(&plans, &p, day("2022-11-10"), &u, &[]);
    let fixed = &records[0].record;
    assert_eq!(
        (
            fixed.reference.as_str(),
            fixed.unit_price,
            fixed.amount,
            fixed.total_price
        ),
        ("Web #3: pageViews tier", dec("50"), dec("1"), dec("50"))
    );
    assert!(fixed.preaggregated);
    let views = &records[1].record;
    assert_eq!(
        (
            views.amount,
            views.billable_amount,
            views.total_price,
            views.preaggregated
        ),
        (dec("1000"), dec("500"), dec("0.5"), false)
    );
    // Below the Pro threshold: the Base price and nothing included.
    let u = usage(
        &[(UsageType::PageViews, 200)],
        &[(UsageType::PageViews, 100)],
    );
    let records = price_day(&plans, &p, day("2022-11-10"), &u, &[]);
    assert_eq!(records[0].record.unit_price, dec("10"));
    assert_eq!(records[1].record.billable_amount, dec("200"));
    // A day without views gets no counter record (the tier record stays).
    let quiet = price_day(
        &plans,
        &p,
        day("2022-11-10"),
        &usage(&[(UsageType::PageViews, 0)], &[]),
        &[],
    );
    assert_eq!(quiet.len(), 1);
}

#[test]
fn caps_free_whole_units_so_the_period_stays_within() {
    let plans = [
        plan(1, "AI Hub", &[], &[("seats", "19.99")]),
        plan(3, "Web", &[], &[("pageViews", "0.001")]),
    ];
    // 10 of usage pricing at most; 9.50 of page views billed already.
    let p = period(Some("10"), None);
    let earlier = [rec(
        "2022-11-01",
        "pageViews",
        "0.001",
        "9500",
        "9500",
        "9.5",
        VIEWS,
        Component::Dynamic,
    )];
    let u = usage(
        &[(UsageType::PageViews, 1000), (UsageType::Seats, 0)],
        &[(UsageType::PageViews, 9500)],
    );
    let records = price_day(&plans, &p, day("2022-11-02"), &u, &earlier);
    let views = records
        .iter()
        .find(|r| r.record.reference == VIEWS)
        .unwrap();
    assert_eq!(
        (
            views.record.amount,
            views.record.billable_amount,
            views.record.total_price
        ),
        (dec("1000"), dec("500"), dec("0.5"))
    );
    let mut all = earlier.to_vec();
    all.extend(records);
    let s = statement(&all, p.trial_ends_at, None, None);
    assert_eq!(
        s.dynamic_total,
        dec("10"),
        "exactly the cap, no holding needed"
    );

    // A gauge under a cap: 3 seats at 19.99 = 59.97 over a cap of 50 frees one seat.
    let p = period(Some("50"), None);
    let seats = price_day(
        &plans[..1],
        &p,
        day("2022-11-02"),
        &usage(&[(UsageType::Seats, 3)], &[]),
        &[],
    );
    assert_eq!(
        (seats[0].record.billable_amount, seats[0].record.total_price),
        (dec("2"), dec("39.98"))
    );
    // The fixed cap holds tier records; a cap under one tier's price frees it.
    let tiers = [plan(
        2,
        "Mail & Push",
        &[("Standard", 0, "15.99", "subscribers")],
        &[],
    )];
    let p = period(None, Some("10"));
    let fixed = price_day(&tiers, &p, day("2022-11-02"), &Usage::default(), &[]);
    assert_eq!(fixed[0].record.billable_amount, dec("0"));
    let p = period(None, Some("20"));
    let fixed = price_day(&tiers, &p, day("2022-11-02"), &Usage::default(), &[]);
    assert_eq!(fixed[0].record.total_price, dec("15.99"));
}

#[test]
fn late_activity_counts_on_the_first_open_day() {
    // At 01:59 the previous day is still open; at 02:00 it closes.
    let late = at("2022-11-01T23:30:00Z");
    assert_eq!(counting_day(late, late), day("2022-11-01"));
    assert_eq!(
        counting_day(late, at("2022-11-02T01:59:00Z")),
        day("2022-11-01")
    );
    assert_eq!(
        counting_day(late, at("2022-11-02T02:00:00Z")),
        day("2022-11-02")
    );
    assert_eq!(
        counting_day(late, at("2022-11-05T09:00:00Z")),
        day("2022-11-05")
    );
    assert_eq!(
        last_closed_day(at("2022-11-02T02:00:00Z")),
        day("2022-11-01")
    );
    assert_eq!(
        last_closed_day(at("2022-11-02T01:59:59Z")),
        day("2022-10-31")
    );
}
