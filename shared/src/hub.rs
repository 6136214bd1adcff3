//! The hub's services, built once per process from the config and one `SdkConfig`.

use aws_config::SdkConfig;

use crate::{
    Config,
    accounts::Accounts,
    analytics::Analytics,
    aws::AwsClients,
    deadletter::DeadLetters,
    events::{EventPublisher, Outbox},
    marketplace::Marketplaces,
    partners::Partners,
    secrets::SecretSealer,
    signed_payload::PayloadVerifier,
    store::{Table, UnitOfWork},
    subscriptions::Subscriptions,
    timeline::Timeline,
};

#[derive(Clone, Debug)]
pub struct Hub {
    pub config: Config,
    pub table: Table,
    /// The one write path: every change goes through it.
    pub uow: UnitOfWork,
    pub partners: Partners,
    pub accounts: Accounts,
    pub outbox: Outbox,
    pub timeline: Timeline,
    pub dead_letters: DeadLetters,
    pub payloads: PayloadVerifier,
    pub subscriptions: Subscriptions,
    pub marketplaces: Marketplaces,
    pub analytics: Analytics,
    pub throttle: crate::throttle::Throttle,
    pub plans: crate::plans::Plans,
    pub billing: crate::billing::Billing,
    pub admin: crate::admin::Admin,
    /// Loyalty SMS: sites, members, jobs (the gateway client is built by the functions
    /// that call it).
    #[cfg(feature = "sms")]
    pub sms: crate::sms::Sms,
    /// The embed API: sub-accounts, their tokens and connections.
    #[cfg(feature = "embed")]
    pub embed: crate::embed::Embed,
    /// The email port, when the hub has a sender (`SENDER_EMAIL`).
    #[cfg(feature = "email")]
    pub mailer: Option<crate::email::Mailer>,
}

impl Hub {
    pub fn new(config: Config, sdk: &SdkConfig) -> Self {
        let clients = AwsClients::new(sdk, config.aws_timeout);
        let table = Table::new(clients.dynamodb.clone(), &config.table_name);
        let publisher = EventPublisher::new(clients.eventbridge.clone(), &config.event_bus_name);
        let outbox = Outbox::new(table.clone(), publisher);
        let uow = UnitOfWork::new(table.clone());
        let sealer = SecretSealer::new(clients.kms.clone(), &config.kms_key_id);
        let plans = crate::plans::Plans::new(uow.clone());
        let partners = Partners::caching(uow.clone(), config.partner_cache);
        Self {
            #[cfg(feature = "sms")]
            sms: crate::sms::Sms::new(uow.clone(), sealer.clone(), config.sms_eligibility_ttl),
            #[cfg(feature = "embed")]
            embed: crate::embed::Embed::new(
                uow.clone(),
                sealer.clone(),
                crate::embed::EmbedKeys::new(clients.kms.clone(), &config.embed_signing_key_ids),
                partners.clone(),
                &config,
            ),
            partners,
            accounts: Accounts::new(uow.clone(), sealer),
            timeline: Timeline::new(table.clone()),
            dead_letters: DeadLetters::new(table.clone()),
            payloads: PayloadVerifier::new(config.max_payload_lifetime, config.clock_skew),
            subscriptions: Subscriptions::new(
                uow.clone(),
                config.tier_catalog.clone(),
                config.auto_approve,
            ),
            marketplaces: Marketplaces::new(uow.clone(), config.suspension_grace),
            analytics: Analytics::new(table.clone()),
            throttle: crate::throttle::Throttle::new(table.clone(), config.throttle),
            plans: plans.clone(),
            admin: crate::admin::Admin::new(uow.clone()),
            #[cfg(feature = "email")]
            mailer: config.sender_email.as_deref().map(|sender| {
                crate::email::Mailer::new(
                    &crate::aws::with_operation_timeout(sdk, config.aws_timeout),
                    sender,
                )
            }),
            billing: crate::billing::Billing::new(uow.clone(), plans.clone()),
            uow,
            outbox,
            table,
            config,
        }
    }

    /// Binds a partner's EventBridge side: the `source` its events carry, its bus for the
    /// hub's answers and the accounts it sends from; then admits those accounts, with that
    /// source only, on the ingress bus (its policy statement for the partner).
    pub async fn set_partner_events(
        &self,
        partner: crate::domain::PartnerId,
        source: &str,
        bus_arn: &str,
        accounts: &[crate::domain::AwsAccountId],
    ) -> Result<crate::partners::PartnerRoute, String> {
        let ingress = self
            .config
            .ingress_bus_name
            .as_deref()
            .ok_or("INGRESS_BUS_NAME is not set: which bus do partners put events on?")?;
        let route = self
            .partners
            .set_event_route(partner, source, bus_arn, accounts)
            .await
            .map_err(|e| e.to_string())?;
        crate::ingress::IngressBus::new(self.outbox.publisher.client(), ingress)
            .allow(partner, &route.source, &route.accounts)
            .await
            .map_err(|e| e.to_string())?;
        Ok(route)
    }

    /// Unbinds a partner's EventBridge side and removes its statement from the ingress
    /// bus's policy (`hub-admin remove-events`, and when a partner leaves).
    pub async fn remove_partner_events(
        &self,
        partner: crate::domain::PartnerId,
    ) -> Result<Option<String>, String> {
        let removed = self
            .partners
            .remove_event_route(partner)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(ingress) = self.config.ingress_bus_name.as_deref() {
            crate::ingress::IngressBus::new(self.outbox.publisher.client(), ingress)
                .revoke(partner)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(removed)
    }

    /// The bus events with this source arrive on: the hub's own for `partner-hub`, the
    /// ingress bus for partners'.
    pub fn bus_for_source(&self, source: &str) -> Option<EventPublisher> {
        if source == crate::events::HUB_EVENT_SOURCE {
            return Some(self.outbox.publisher.clone());
        }
        let ingress = self.config.ingress_bus_name.as_deref()?;
        Some(EventPublisher::new(self.outbox.publisher.client(), ingress))
    }

    /// Reads the config from the environment and loads the AWS config: a function's init.
    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let config = Config::from_env()?;
        let sdk = crate::aws::load_sdk_config().await;
        Ok(Self::new(config, &sdk))
    }
}
