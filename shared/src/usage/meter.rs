//! The daily usage job's work: each shop's closed days priced into usage records (see
//! the module above), stored once with the webhook that carries them to the partner.
//!
//! Shops are found through their selections (the `BILLING_PERIOD` due index holds every
//! selection, keyed by its period's end): one `Query`, never a scan. A run meters the
//! last [`CATCH_UP_DAYS`] closed days of each shop that are not metered yet, so a run
//! that failed or did not happen is made up by the next one.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::{
    Component, MeteredDay, MeteredRecord, Usage, UsageType, day_in, last_closed_day, period_days,
    price_day, records_between,
};
use crate::{
    accounts::Account,
    admin::Seat,
    analytics::{DayActivity, day_string, hll_estimate},
    billing::{BillingPeriod, Selection},
    clock,
    domain::BillingOwner,
    partner_webhooks,
    partners::Partner,
    store::{Planned, Query, StoreError, Tx, TxError, UnitOfWork, keys, keys::Due},
};

/// How many closed days back a run looks for days not metered yet.
pub const CATCH_UP_DAYS: i64 = 7;

#[derive(Debug, thiserror::Error)]
pub enum MeterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tx(#[from] TxError),
    #[error("the usage records of {0} could not be encoded: {1}")]
    Encode(String, serde_json::Error),
}

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MeterReport {
    pub shops: usize,
    pub days_metered: usize,
    pub records: usize,
    pub webhooks: usize,
}

#[derive(Clone, Debug)]
pub struct UsageMeter {
    uow: UnitOfWork,
}

impl UsageMeter {
    pub fn new(uow: UnitOfWork) -> Self {
        Self { uow }
    }

    /// Meters every shop's closed days not metered yet, as of `now`.
    pub async fn meter_closed_days(&self, now: OffsetDateTime) -> Result<MeterReport, MeterError> {
        let table = self.uow.table();
        let selections: Vec<Selection> = table
            .query_all(&Query::due(
                Due::BillingPeriod,
                clock::sortable(clock::LATEST),
            ))
            .await?;
        let last = last_closed_day(now);
        let mut report = MeterReport::default();
        for selection in selections {
            let Some(account) = table
                .get::<Account>(&keys::account(selection.account_id))
                .await?
            else {
                continue;
            };
            if account.billing == BillingOwner::Marketplace {
                continue;
            }
            let partner: Option<Partner> = table.get(&keys::partner(selection.partner_id)).await?;
            report.shops += 1;
            for back in (0..CATCH_UP_DAYS).rev() {
                let day = last - Duration::days(back);
                let Some(period) = [Some(&selection.period), selection.previous_period.as_ref()]
                    .into_iter()
                    .flatten()
                    .find(|p| day_in(day, p))
                else {
                    continue;
                };
                if paused_all_day(&account, day) {
                    continue;
                }
                if let Some(metered) = self
                    .meter_day(&selection, period, &account, partner.as_ref(), day, now)
                    .await?
                {
                    report.days_metered += 1;
                    report.records += metered.records.len();
                    report.webhooks += usize::from(metered.delivery_id.is_some());
                }
            }
        }
        Ok(report)
    }

    /// Meters one day unless it is metered already; `Some` when this call did.
    async fn meter_day(
        &self,
        selection: &Selection,
        period: &BillingPeriod,
        account: &Account,
        partner: Option<&Partner>,
        day: time::Date,
        now: OffsetDateTime,
    ) -> Result<Option<MeteredDay>, MeterError> {
        let table = self.uow.table();
        let day_text = day_string(day);
        let id = account.id;
        self.uow
            .apply(|| async {
                if table
                    .get::<MeteredDay>(&keys::usage_day(id, &day_text))
                    .await?
                    .is_some()
                {
                    return Ok(Planned::nothing(None));
                }
                let usage = self.usage(account, period, day).await?;
                let earlier = self.earlier_records(account, period, day).await?;
                let records = price_day(&selection.plans, period, day, &usage, &earlier);
                let delivery =
                    partner.and_then(|p| partner_webhooks::usage_delivery(p, id, &records));
                let metered = MeteredDay {
                    account_id: id,
                    day: day_text.clone(),
                    records,
                    delivery_id: delivery.as_ref().map(|d| d.id.clone()),
                    metered_at: clock::sortable(now),
                };
                let mut tx = Tx::new();
                tx.put_new(&metered)?;
                if let Some(delivery) = &delivery {
                    tx.put_new(delivery)?;
                }
                // A tier price reached: the partner is asked to have the shop confirm
                // its subscriptions at the new price (contract 5.2).
                if let (Some(reference), Some(partner)) =
                    (tier_reached(&metered.records, &earlier), partner)
                {
                    partner_webhooks::stage_change_request(
                        &mut tx,
                        partner,
                        id,
                        selection.plans.iter().map(|p| p.spec.id).collect(),
                        format!("{reference} reached a higher tier"),
                    )?;
                }
                Ok::<_, MeterError>(Planned::new(tx, Some(metered)))
            })
            .await
    }

    /// The shop's usage as of the end of `day`.
    async fn usage(
        &self,
        account: &Account,
        period: &BillingPeriod,
        day: time::Date,
    ) -> Result<Usage, MeterError> {
        let table = self.uow.table();
        let (first, _) = period_days(period);
        let day_text = day_string(day);
        let days: Vec<DayActivity> = table
            .query_all(
                &Query::partition(keys::analytics_partition(account.id))
                    .sort_between(
                        format!("DAY#{}", day_string(first)),
                        format!("DAY#{day_text}"),
                    )
                    .project(&[
                        "account_id",
                        "day",
                        "page_views",
                        "page_users",
                        "text_messages",
                    ]),
            )
            .await?;
        let seats: Vec<Seat> = table
            .query_all(
                &Query::partition(keys::account_partition(account.id))
                    .sort_begins_with(keys::SEAT_PREFIX),
            )
            .await?;
        let mut usage = Usage::default();
        let (today, before): (Vec<&DayActivity>, Vec<&DayActivity>) =
            days.iter().partition(|d| d.day == day_text);
        usage.of_day.insert(
            UsageType::PageViews,
            today.iter().map(|d| d.page_views).sum(),
        );
        usage.before.insert(
            UsageType::PageViews,
            before.iter().map(|d| d.page_views).sum(),
        );
        usage.of_day.insert(
            UsageType::TextMessages,
            today.iter().map(|d| d.text_messages).sum(),
        );
        usage.before.insert(
            UsageType::TextMessages,
            before.iter().map(|d| d.text_messages).sum(),
        );
        usage.of_day.insert(
            UsageType::MonthlyActiveUsers,
            hll_estimate(days.iter().flat_map(|d| &d.page_users)),
        );
        usage.of_day.insert(UsageType::Seats, seats.len() as u64);
        Ok(usage)
    }

    /// The records of the period's days before `day`.
    async fn earlier_records(
        &self,
        account: &Account,
        period: &BillingPeriod,
        day: time::Date,
    ) -> Result<Vec<MeteredRecord>, MeterError> {
        let (first, _) = period_days(period);
        let Some(yesterday) = day.previous_day() else {
            return Ok(Vec::new());
        };
        Ok(records_between(self.uow.table(), account.id, first, yesterday).await?)
    }
}

/// The reference of a tier record priced higher than the period's one before it.
fn tier_reached(today: &[MeteredRecord], earlier: &[MeteredRecord]) -> Option<String> {
    today
        .iter()
        .filter(|r| r.component == Component::Fixed)
        .find(|r| {
            earlier
                .iter()
                .filter(|e| e.record.reference == r.record.reference)
                .max_by(|a, b| a.record.day.cmp(&b.record.day))
                .is_some_and(|e| r.record.unit_price > e.record.unit_price)
        })
        .map(|r| r.record.reference.clone())
}

/// Whether the shop was paused for the whole of `day`.
fn paused_all_day(account: &Account, day: time::Date) -> bool {
    let start = day.midnight().assume_utc();
    let end = start + Duration::days(1);
    account.paused_intervals.iter().any(|p| {
        let from = clock::parse_rfc3339(&p.from);
        let to = p.to.as_deref().map(clock::parse_rfc3339);
        from.is_some_and(|from| from <= start)
            && match to {
                None => true,
                Some(to) => to.is_some_and(|to| to >= end),
            }
    })
}
