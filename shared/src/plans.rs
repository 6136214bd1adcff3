//! The plan catalog of the signed-payload contract (step 2): data operators manage
//! (`hub-admin plans put --file plans.json`), not code. Each plan is versioned: a change
//! makes a new version, and a shop's confirmed selection keeps the versions it confirmed,
//! so a price change never rewrites what a shop already agreed to.
//!
//! [`ContractPlan`] is the contract's shape, used both for the operators' catalog file
//! and for the answer to `POST /api/v0/partners/subscriptions`: the contract's own
//! spelling `treshold`, prices as JSON numbers kept as exact decimals (never `f64`), plus
//! the integer `id` the confirm call takes and the plan's default `trialDays`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    clock,
    domain::{ParseError, Price, free_text},
    store::{Keys, Planned, Query, Record, StoreError, Table, Tx, TxError, UnitOfWork, keys},
};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{field} {message}")]
    Invalid { field: String, message: String },
    #[error("no plan {0}")]
    Unknown(u32),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tx(#[from] TxError),
}

fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> PlanError {
    PlanError::Invalid {
        field: field.into(),
        message: message.to_string(),
    }
}

/// A plan in the contract's shape.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractPlan {
    pub id: u32,
    pub name: String,
    pub summary: String,
    pub description: String,
    pub allowed_actions: Vec<String>,
    pub subscription_tiered_pricings: Vec<ContractTier>,
    pub subscription_dynamic_pricings: Vec<ContractDynamic>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub trial_days: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ContractTier {
    pub name: String,
    /// The contract's spelling.
    pub treshold: u64,
    pub price: Box<RawValue>,
    pub unit: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractDynamic {
    pub unit: String,
    pub unit_price: Box<RawValue>,
}

/// A tier of a plan's fixed pricing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TieredPricing {
    pub name: String,
    pub threshold: u64,
    pub price: Price,
    pub unit: String,
}

/// A usage price of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicPricing {
    pub unit: String,
    pub unit_price: Price,
}

/// What an operator says a plan is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSpec {
    pub id: u32,
    pub name: String,
    pub summary: String,
    pub description: String,
    pub allowed_actions: Vec<String>,
    pub tiered_pricings: Vec<TieredPricing>,
    pub dynamic_pricings: Vec<DynamicPricing>,
    pub kind: String,
    pub trial_days: u32,
}

/// One version of a plan, as stored (the current one, and each in the history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    #[serde(flatten)]
    pub spec: PlanSpec,
    pub version: u32,
    pub published_at: String,
}

/// The longest a catalog may be (one transaction per plan; listing reads one page).
pub const MAX_PLANS: usize = 100;
const MAX_ACTIONS: usize = 100;
const MAX_TRIAL_DAYS: u32 = 3650;

fn text(field: &str, value: &str) -> Result<String, PlanError> {
    free_text(value)
        .map_err(|e| invalid(field, e))?
        .ok_or_else(|| invalid(field, "must not be empty"))
}

fn price(field: &str, raw: &RawValue) -> Result<Price, PlanError> {
    Price::parse(raw.get()).map_err(|e: ParseError| invalid(field, e))
}

impl ContractPlan {
    /// The plan as the hub keeps it, every field checked (named as in the file).
    pub fn to_spec(&self) -> Result<PlanSpec, PlanError> {
        let at = |field: &str| format!("plans[id={}].{field}", self.id);
        if self.id == 0 {
            return Err(invalid(at("id"), "must be a positive integer"));
        }
        if self.allowed_actions.len() > MAX_ACTIONS {
            return Err(invalid(
                at("allowedActions"),
                format!("has more than {MAX_ACTIONS} entries"),
            ));
        }
        if self.trial_days > MAX_TRIAL_DAYS {
            return Err(invalid(
                at("trialDays"),
                format!("must be at most {MAX_TRIAL_DAYS}"),
            ));
        }
        Ok(PlanSpec {
            id: self.id,
            name: text(&at("name"), &self.name)?,
            summary: text(&at("summary"), &self.summary)?,
            description: crate::domain::bounded_text(&self.description, 2000)
                .map_err(|e| invalid(at("description"), e))?
                .unwrap_or_default(),
            allowed_actions: self
                .allowed_actions
                .iter()
                .map(|a| text(&at("allowedActions"), a))
                .collect::<Result<_, _>>()?,
            tiered_pricings: self
                .subscription_tiered_pricings
                .iter()
                .map(|t| {
                    Ok(TieredPricing {
                        name: text(&at("subscriptionTieredPricings.name"), &t.name)?,
                        threshold: t.treshold,
                        price: price(&at("subscriptionTieredPricings.price"), &t.price)?,
                        unit: text(&at("subscriptionTieredPricings.unit"), &t.unit)?,
                    })
                })
                .collect::<Result<_, PlanError>>()?,
            dynamic_pricings: self
                .subscription_dynamic_pricings
                .iter()
                .map(|d| {
                    Ok(DynamicPricing {
                        unit: text(&at("subscriptionDynamicPricings.unit"), &d.unit)?,
                        unit_price: price(
                            &at("subscriptionDynamicPricings.unitPrice"),
                            &d.unit_price,
                        )?,
                    })
                })
                .collect::<Result<_, PlanError>>()?,
            kind: text(&at("type"), &self.kind)?,
            trial_days: self.trial_days,
        })
    }

    pub fn from_spec(spec: &PlanSpec) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: spec.id,
            name: spec.name.clone(),
            summary: spec.summary.clone(),
            description: spec.description.clone(),
            allowed_actions: spec.allowed_actions.clone(),
            subscription_tiered_pricings: spec
                .tiered_pricings
                .iter()
                .map(|t| {
                    Ok(ContractTier {
                        name: t.name.clone(),
                        treshold: t.threshold,
                        price: t.price.to_json_number()?,
                        unit: t.unit.clone(),
                    })
                })
                .collect::<Result<_, serde_json::Error>>()?,
            subscription_dynamic_pricings: spec
                .dynamic_pricings
                .iter()
                .map(|d| {
                    Ok(ContractDynamic {
                        unit: d.unit.clone(),
                        unit_price: d.unit_price.to_json_number()?,
                    })
                })
                .collect::<Result<_, serde_json::Error>>()?,
            kind: spec.kind.clone(),
            trial_days: spec.trial_days,
        })
    }
}

/// Parses an operator's catalog file: a JSON array of plans in the contract's shape.
pub fn parse_catalog(json: &str) -> Result<Vec<PlanSpec>, PlanError> {
    let plans: Vec<ContractPlan> =
        serde_json::from_str(json).map_err(|e| invalid("plans", format!("are not valid: {e}")))?;
    if plans.len() > MAX_PLANS {
        return Err(invalid("plans", format!("more than {MAX_PLANS}")));
    }
    let specs: Vec<PlanSpec> = plans
        .iter()
        .map(ContractPlan::to_spec)
        .collect::<Result<_, _>>()?;
    let mut ids: Vec<u32> = specs.iter().map(|p| p.id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(invalid("plans", "name an id twice"));
    }
    Ok(specs)
}

/// The current version of a plan (listed with the catalog).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CurrentPlan(Plan);

impl Record for CurrentPlan {
    fn keys(&self) -> Keys {
        keys::plan_current(self.0.spec.id)
    }
}

/// A version of a plan, kept for ever.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PlanVersion(Plan);

impl Record for PlanVersion {
    fn keys(&self) -> Keys {
        keys::plan_version(self.0.spec.id, self.0.version)
    }
}

/// What putting a catalog did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Published {
    /// Plans with a new version (new plans at version 1).
    pub changed: Vec<(u32, u32)>,
    pub unchanged: Vec<u32>,
}

#[derive(Clone, Debug)]
pub struct Plans {
    uow: UnitOfWork,
}

impl Plans {
    pub fn new(uow: UnitOfWork) -> Self {
        Self { uow }
    }

    fn table(&self) -> &Table {
        self.uow.table()
    }

    /// The current catalog, by id.
    pub async fn list(&self) -> Result<Vec<Plan>, PlanError> {
        let current: Vec<CurrentPlan> = self
            .table()
            .query_all(&Query::partition(keys::PLANS_PK))
            .await?;
        Ok(current.into_iter().map(|c| c.0).collect())
    }

    /// The current versions of these plans, in the order asked; an unknown id is named.
    pub async fn current(&self, ids: &[u32]) -> Result<Vec<Plan>, PlanError> {
        let catalog = self.list().await?;
        ids.iter()
            .map(|id| {
                catalog
                    .iter()
                    .find(|p| p.spec.id == *id)
                    .cloned()
                    .ok_or(PlanError::Unknown(*id))
            })
            .collect()
    }

    /// Publishes plans: a plan whose content changed gets a new version (the old ones
    /// stay); an unchanged one is left alone. Plans not in `specs` stay as they are.
    pub async fn put(&self, specs: &[PlanSpec]) -> Result<Published, PlanError> {
        let mut published = Published::default();
        for spec in specs {
            let outcome = self
                .uow
                .apply(|| async {
                    let current: Option<CurrentPlan> =
                        self.table().get(&keys::plan_current(spec.id)).await?;
                    let version = match &current {
                        Some(c) if &c.0.spec == spec => {
                            return Ok(Planned::nothing(None));
                        }
                        Some(c) => c.0.version + 1,
                        None => 1,
                    };
                    let plan = Plan {
                        spec: spec.clone(),
                        version,
                        published_at: clock::sortable(clock::now()),
                    };
                    let mut tx = Tx::new();
                    // A concurrent publisher of the same version loses here and re-plans.
                    tx.put_new(&PlanVersion(plan.clone()))?;
                    tx.put(&CurrentPlan(plan))?;
                    Ok::<_, PlanError>(Planned::new(tx, Some(version)))
                })
                .await?;
            match outcome {
                Some(version) => published.changed.push((spec.id, version)),
                None => published.unchanged.push(spec.id),
            }
        }
        Ok(published)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = include_str!("../../events/partner-api/plans.json");

    #[test]
    fn the_sample_catalog_parses_exactly_and_prints_back_the_same() {
        let specs = parse_catalog(CATALOG).unwrap();
        assert!(specs.len() >= 3);
        let mail = specs.iter().find(|p| p.name == "Mail & Push").unwrap();
        assert_eq!(mail.tiered_pricings[0].price.as_str(), "15.99");
        assert_eq!(mail.dynamic_pricings[0].unit_price.as_str(), "0.012");
        let wire = serde_json::to_value(ContractPlan::from_spec(mail).unwrap()).unwrap();
        assert_eq!(wire["subscriptionTieredPricings"][0]["treshold"], 0);
        assert_eq!(
            wire["subscriptionDynamicPricings"][0]["unitPrice"].to_string(),
            "0.012"
        );
        assert_eq!(wire["type"], "modular");
    }

    #[test]
    fn bad_catalogs_name_the_field() {
        let bad = r#"[{"id": 1, "name": "", "summary": "s", "description": "d", "allowedActions": [],
            "subscriptionTieredPricings": [], "subscriptionDynamicPricings": [], "type": "modular"}]"#;
        assert!(
            matches!(parse_catalog(bad), Err(PlanError::Invalid { field, .. }) if field == "plans[id=1].name")
        );
        let negative = CATALOG.replacen("19.99", "-19.99", 1);
        assert!(
            matches!(parse_catalog(&negative), Err(PlanError::Invalid { field, .. }) if field.ends_with("unitPrice"))
        );
        let twice = format!(
            "[{0}, {0}]",
            &serde_json::to_string(&serde_json::from_str::<serde_json::Value>(CATALOG).unwrap()[0])
                .unwrap()
        );
        assert!(parse_catalog(&twice).is_err());
    }
}
