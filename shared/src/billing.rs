//! A shop's plan selection and billing periods (signed-payload contract, step 3).
//!
//! A shop has one current selection: the plans it confirmed, each at the version it
//! confirmed (a later price change does not rewrite it), and its billing period. A new
//! confirmation replaces it; the old one is kept as history. The same claims again
//! change nothing. When a period ends the next one starts — found through the due index
//! (never a scan) by the `billing-periods` schedule: advanced by whole calendar months
//! when start and end fall on the same day of the month at the same time (the
//! contract's 22 Oct → 22 Nov), otherwise by the same duration.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::{
    clock,
    domain::{AccountId, PartnerId, Price},
    events::{BillingPeriodSnapshot, EventPayload, HubEvent, PlansConfirmed},
    plans::{Plan, PlanError, Plans},
    store::{
        FirstRead, Keys, Planned, Query, Record, StoreError, Tx, TxError, UnitOfWork, keys,
        keys::Due,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("{field} {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tx(#[from] TxError),
}

/// A billing period, with the trial and caps that apply to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingPeriod {
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub end: OffsetDateTime,
    pub trial_days: u32,
    /// The trial runs from the first period's start; later periods keep the date.
    #[serde(with = "time::serde::rfc3339")]
    pub trial_ends_at: OffsetDateTime,
    pub dynamic_price_cap_usd: Option<Price>,
    pub fixed_price_cap_usd: Option<Price>,
}

impl BillingPeriod {
    /// The period after this one (see the module's rule), or `None` past year 9999.
    pub fn next(&self) -> Option<Self> {
        let (start, end) = (self.start, self.end);
        let months = (end.year() - start.year()) * 12
            + (i32::from(u8::from(end.month())) - i32::from(u8::from(start.month())));
        let next_end = if start.day() == end.day() && start.time() == end.time() && months > 0 {
            add_months(end, months)?
        } else {
            clock::in_range(end.checked_add(end - start)?)?
        };
        Some(Self {
            start: end,
            end: next_end,
            ..self.clone()
        })
    }

    pub fn snapshot(&self) -> BillingPeriodSnapshot {
        BillingPeriodSnapshot {
            start: clock::rfc3339_millis(self.start),
            end: clock::rfc3339_millis(self.end),
            trial_days: self.trial_days,
            trial_ends_at: clock::rfc3339_millis(self.trial_ends_at),
            dynamic_price_cap_usd: self.dynamic_price_cap_usd.clone(),
            fixed_price_cap_usd: self.fixed_price_cap_usd.clone(),
        }
    }
}

/// `at` plus whole calendar months, the day kept (clamped to the month's last day).
fn add_months(at: OffsetDateTime, months: i32) -> Option<OffsetDateTime> {
    let index = at.year() * 12 + i32::from(u8::from(at.month())) - 1 + months;
    let (year, month) = (index.div_euclid(12), (index.rem_euclid(12) + 1) as u8);
    let month = time::Month::try_from(month).ok()?;
    let day = at.day().min(time::util::days_in_month(month, year));
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    clock::in_range(at.replace_date(date))
}

/// A shop's current selection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub account_id: AccountId,
    pub partner_id: PartnerId,
    /// The plans as confirmed (each at its version then).
    pub plans: Vec<Plan>,
    pub period: BillingPeriod,
    /// The period before `period`, once one ended: the usage job still meters its last
    /// day after the next period started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_period: Option<BillingPeriod>,
    /// The confirmation's claims in canonical form (time claims left out): the same
    /// claims again change nothing.
    pub claims_hash: String,
    pub confirmed_at: String,
    pub revision: u64,
}

impl Record for Selection {
    fn keys(&self) -> Keys {
        keys::selection(self.account_id).due(Due::BillingPeriod, clock::sortable(self.period.end))
    }
}

/// A replaced selection, kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SelectionHistory(Selection);

impl Record for SelectionHistory {
    fn keys(&self) -> Keys {
        keys::selection_history(self.0.account_id, &self.0.confirmed_at)
    }
}

/// What a shop confirms.
#[derive(Debug, Clone)]
pub struct Confirmation {
    pub plan_ids: Vec<u32>,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    /// `None`: the longest default trial of the chosen plans.
    pub trial_days: Option<u32>,
    pub dynamic_price_cap_usd: Option<Price>,
    pub fixed_price_cap_usd: Option<Price>,
    pub claims_hash: String,
}

/// What a confirmation is planned from (see [`Billing::confirmation_reads`]).
#[derive(Debug, Clone)]
pub struct ConfirmationReads {
    plans: Vec<crate::plans::Plan>,
    current: Option<Selection>,
}

/// The longest trial a confirmation may grant.
pub const MAX_TRIAL_DAYS: u32 = 3650;

#[derive(Clone, Debug)]
pub struct Billing {
    uow: UnitOfWork,
    plans: Plans,
}

impl Billing {
    pub fn new(uow: UnitOfWork, plans: Plans) -> Self {
        Self { uow, plans }
    }

    pub async fn selection(&self, account: AccountId) -> Result<Option<Selection>, BillingError> {
        Ok(self.uow.table().get(&keys::selection(account)).await?)
    }

    /// What confirming reads, in one round trip (which a caller can send beside its own
    /// check of the shop): the plans' current versions and the shop's selection.
    pub async fn confirmation_reads(
        &self,
        account: AccountId,
        confirmation: &Confirmation,
    ) -> Result<ConfirmationReads, BillingError> {
        if confirmation.plan_ids.is_empty() {
            return Err(BillingError::Invalid {
                field: "subscriptionIds",
                message: "must name at least one subscription".into(),
            });
        }
        if confirmation.start >= confirmation.end {
            return Err(BillingError::Invalid {
                field: "end",
                message: "must be after start".into(),
            });
        }
        let (plans, current) = tokio::try_join!(
            async { Ok::<_, BillingError>(self.plans.current(&confirmation.plan_ids).await?) },
            self.selection(account),
        )?;
        Ok(ConfirmationReads { plans, current })
    }

    /// Confirms a selection for the shop, planned from `reads`
    /// ([`confirmation_reads`](Self::confirmation_reads)); the same claims again answer
    /// the current one.
    pub async fn confirm(
        &self,
        partner: PartnerId,
        account: AccountId,
        confirmation: Confirmation,
        reads: ConfirmationReads,
    ) -> Result<Selection, BillingError> {
        let ConfirmationReads { plans, current } = reads;
        let trial_days = confirmation
            .trial_days
            .unwrap_or_else(|| plans.iter().map(|p| p.spec.trial_days).max().unwrap_or(0));
        if trial_days > MAX_TRIAL_DAYS {
            return Err(BillingError::Invalid {
                field: "trialDays",
                message: format!("must be at most {MAX_TRIAL_DAYS}"),
            });
        }
        let trial_ends_at = clock::in_range(
            confirmation
                .start
                .checked_add(Duration::days(i64::from(trial_days)))
                .unwrap_or(clock::LATEST),
        )
        .ok_or(BillingError::Invalid {
            field: "trialDays",
            message: "ends past the year 9999".into(),
        })?;
        let period = BillingPeriod {
            start: confirmation.start,
            end: confirmation.end,
            trial_days,
            trial_ends_at,
            dynamic_price_cap_usd: confirmation.dynamic_price_cap_usd.clone(),
            fixed_price_cap_usd: confirmation.fixed_price_cap_usd.clone(),
        };
        let first = FirstRead::new(Some(current));
        self.uow
            .apply(|| async {
                let current = first.or_read(|| self.selection(account)).await?;
                if let Some(current) = current
                    .as_ref()
                    .filter(|c| c.claims_hash == confirmation.claims_hash)
                {
                    return Ok(Planned::nothing(current.clone()));
                }
                let mut tx = Tx::new();
                let revision = match &current {
                    Some(old) => {
                        tx.put_new(&SelectionHistory(old.clone()))?;
                        old.revision + 1
                    }
                    None => 1,
                };
                let selection = Selection {
                    account_id: account,
                    partner_id: partner,
                    plans: plans.clone(),
                    period: period.clone(),
                    previous_period: None,
                    claims_hash: confirmation.claims_hash.clone(),
                    confirmed_at: clock::sortable(clock::now()),
                    revision,
                };
                tx.put_revision(&selection, current.as_ref().map(|old| old.revision))?;
                tx.event(
                    HubEvent::new(EventPayload::PlansConfirmed(PlansConfirmed {
                        subscription_ids: plans.iter().map(|p| p.spec.id).collect(),
                        plan_versions: plans.iter().map(|p| p.version).collect(),
                        billing_period: period.snapshot(),
                        replaced: current.is_some(),
                    }))
                    .for_account(account, partner),
                );
                Ok::<_, BillingError>(Planned::new(tx, selection))
            })
            .await
    }

    /// Starts the next period of every selection whose period ended by `now` (several,
    /// if the schedule was down that long), each with a `billing_period.started` event.
    /// Returns how many periods started.
    pub async fn roll_over_due(&self, now: OffsetDateTime) -> Result<usize, BillingError> {
        let due: Vec<Selection> = self
            .uow
            .table()
            .query_all(&Query::due(Due::BillingPeriod, clock::sortable(now)))
            .await?;
        let mut started = 0;
        for selection in due {
            started += self.roll_over(selection.account_id, now).await?;
        }
        Ok(started)
    }

    async fn roll_over(
        &self,
        account: AccountId,
        now: OffsetDateTime,
    ) -> Result<usize, BillingError> {
        self.uow
            .apply(|| async {
                let Some(current) = self.selection(account).await? else {
                    return Ok(Planned::nothing(0));
                };
                let mut next = current.clone();
                let mut tx = Tx::new();
                let mut started = 0;
                while next.period.end <= now {
                    let Some(period) = next.period.next() else {
                        break;
                    };
                    next.previous_period = Some(std::mem::replace(&mut next.period, period));
                    started += 1;
                    tx.event(
                        HubEvent::new(EventPayload::BillingPeriodStarted(next.period.snapshot()))
                            .for_account(account, current.partner_id),
                    );
                    // A schedule down for years must not make one oversized transaction.
                    if started >= 24 {
                        break;
                    }
                }
                if started == 0 {
                    return Ok(Planned::nothing(0));
                }
                next.revision = current.revision + 1;
                tx.put_revision(&next, Some(current.revision))?;
                Ok::<_, BillingError>(Planned::new(tx, started))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(start: &str, end: &str) -> BillingPeriod {
        let at = |s| clock::parse_rfc3339(s).unwrap();
        BillingPeriod {
            start: at(start),
            end: at(end),
            trial_days: 14,
            trial_ends_at: at(start),
            dynamic_price_cap_usd: None,
            fixed_price_cap_usd: None,
        }
    }

    #[test]
    fn monthly_periods_advance_by_calendar_months() {
        let p = period("2022-10-22T00:00:00Z", "2022-11-22T00:00:00Z");
        let next = p.next().unwrap();
        assert_eq!(
            clock::rfc3339_millis(next.start),
            "2022-11-22T00:00:00.000Z"
        );
        assert_eq!(clock::rfc3339_millis(next.end), "2022-12-22T00:00:00.000Z");
        let after = next.next().unwrap();
        assert_eq!(clock::rfc3339_millis(after.end), "2023-01-22T00:00:00.000Z");
        // Quarterly stays quarterly; a day the month lacks clamps to its last day.
        let q = period("2023-01-15T00:00:00Z", "2023-04-15T00:00:00Z");
        assert_eq!(
            clock::rfc3339_millis(q.next().unwrap().end),
            "2023-07-15T00:00:00.000Z"
        );
        let m = period("2022-12-31T00:00:00Z", "2023-01-31T00:00:00Z");
        assert_eq!(
            clock::rfc3339_millis(m.next().unwrap().end),
            "2023-02-28T00:00:00.000Z"
        );
    }

    #[test]
    fn other_periods_advance_by_their_duration() {
        let p = period("2022-10-22T00:00:00Z", "2022-11-05T00:00:00Z");
        let next = p.next().unwrap();
        assert_eq!(clock::rfc3339_millis(next.end), "2022-11-19T00:00:00.000Z");
        let last = period("9999-11-01T00:00:00Z", "9999-12-31T00:00:00Z");
        assert!(last.next().is_none());
    }
}
