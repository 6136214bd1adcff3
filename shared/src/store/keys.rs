//! Every key of the hub's single table, built here and nowhere else.
//!
//! Keys are designed from the access patterns; each pattern is one request:
//!
//! | access pattern                            | key                                                          |
//! |-------------------------------------------|--------------------------------------------------------------|
//! | a partner by id                           | `PK=PARTNER#<id>`, `SK=PARTNER`                              |
//! | a partner by token                        | GSI1 `GSI1PK=PARTNER_TOKEN#<sha256(token)>`                  |
//! | a partner by its EventBridge source       | `PK=PARTNER_SOURCE#<source>`, `SK=PARTNER_SOURCE`            |
//! | an account by id                          | `PK=ACCOUNT#<id>`, `SK=ACCOUNT`                              |
//! | an account by shop / partner+external id  | the id is derived from them (UUIDv5): the same `GetItem`     |
//! | a partner's accounts                      | GSI1 `GSI1PK=PARTNER#<id>#ACCOUNTS`, `GSI1SK=<created>#<id>` |
//! | an account's subscription(s)              | `PK=ACCOUNT#<id>`, `SK=SUBSCRIPTION#<subscription id>`       |
//! | a marketplace user's personal data        | `PK=ACCOUNT#<id>`, `SK=PROFILE`                              |
//! | an account's timeline                     | `PK=ACCOUNT#<id>`, `SK` begins with `TIMELINE#<at>#`         |
//! | an account's analytics by day range       | `PK=ANALYTICS#<id>`, `SK=DAY#<yyyy-mm-dd>` (BatchGetItem)    |
//! | an account by widget or search key        | `PK=WIDGET_KEY#<key>`, `SK=WIDGET_KEY`                       |
//! | an inbound message id (idempotency ledger)| `PK=LEDGER#<scope>#<message id>`, `SK=LEDGER`                |
//! | what remains of a deleted account         | `PK=TOMBSTONE#<id>`, `SK=TOMBSTONE`                          |
//! | a cancelled account's pending cleanup     | `PK=CLEANUP#<id>`, `SK=CLEANUP`, due `CLEANUP`               |
//! | events not yet published (outbox)         | `PK=OUTBOX#<event id>`, `SK=OUTBOX`, due `OUTBOX`            |
//! | dead letters                              | `PK=DEADLETTER`, `SK=<at>#<id>`                              |
//! | an outbound delivery by message id        | `PK=DELIVERY#<id>`, `SK=DELIVERY`, due `DELIVERY` while pending |
//! | failed deliveries (for operators)         | GSI1 `GSI1PK=DELIVERIES#FAILED`, `GSI1SK=<at>#<id>`          |
//! | a shop's plan selection (due: period end) | `PK=ACCOUNT#<id>`, `SK=SELECTION`, due `BILLING_PERIOD`      |
//! | a shop's replaced selections              | `PK=ACCOUNT#<id>`, `SK=PAST_SELECTION#<confirmed at>`     |
//! | a shop's metered day (usage records)      | `PK=ACCOUNT#<id>`, `SK=USAGE_DAY#<yyyy-mm-dd>`               |
//! | a shop's subscription change requests     | `PK=ACCOUNT#<id>`, `SK=CHANGE_REQUEST#<message id>`          |
//! | a user with access to a shop (seats)      | `PK=ACCOUNT#<id>`, `SK=SEAT#<user uuid>`                     |
//! | an admin user (partner + email)           | `PK=ADMIN_USER#<uuid v5>`, `SK=ADMIN_USER`                   |
//! | a used SSO link / a session / a confirmation | `PK=SSO_LINK#<hash>` / `ADMIN_SESSION#<hash>` / `ADMIN_CONFIRM#<hash>`, TTL |
//! | the plan catalog (current versions)       | `PK=PLANS`, `SK=PLAN#<id>`                                   |
//! | a plan's versions                         | `PK=PLAN#<id>`, `SK=V#<version>`                             |
//! | failures in a window (throttling)         | `PK=THROTTLE#<scope>#<window start>`, `SK=THROTTLE`, TTL     |
//! | an SMS site (loyalty client) by site id    | `PK=ACCOUNT#<uuid v5 of site id>`, `SK=SMS_SITE`            |
//! | every SMS site (the send job's list)      | GSI1 `GSI1PK=SMS_SITES`, `GSI1SK=<site id>`                  |
//! | a site's member by mobile number          | `PK=ACCOUNT#<id>`, `SK=SMS_MEMBER#<e164>` (BatchGetItem)     |
//! | a site's SMS job by loyalty action id     | `PK=ACCOUNT#<id>`, `SK=SMS_JOB#<action id>`, due `SMS#<site>` |
//! | a member's SMS jobs (their SMS timeline)  | GSI1 `GSI1PK=SMS_MEMBER#<site>#<e164>`, `GSI1SK=<created>`   |
//! | parked SMS jobs (for operators)           | due `SMS_PARKED` (never due: `DueAt` is when it was parked) |
//! | a site's segment by id                    | `PK=ACCOUNT#<id>`, `SK=SMS_SEGMENT#<id, 12 digits>`          |
//! | a segment by site and `externalId`       | `PK=ACCOUNT#<id>`, `SK=SMS_SEGMENT_EXT#<external id>`         |
//! | a sub-account (embed API) by partner + number | `PK=ACCOUNT#<uuid v5 of partner, number>`, `SK=SUBACCOUNT` |
//! | a partner's sub-accounts, by number      | GSI1 `GSI1PK=PARTNER#<id>#SUBACCOUNTS`, `GSI1SK=<number, 12 digits>` |
//! | a sub-account by partner + external id   | `PK=SUBACCOUNT_EXT#<partner>#<external id>`, `SK=SUBACCOUNT_EXT` (its number) |
//! | the partner a browser origin belongs to  | `PK=EMBED_ORIGIN#<origin>`, `SK=EMBED_ORIGIN`                 |
//! | a sub-account's connection by id         | `PK=ACCOUNT#<id>`, `SK=CONNECTION#<id, 12 digits>`, due `OAUTH_REFRESH` |
//! | a connection's log                       | `PK=ACCOUNT#<id>`, `SK=CONNECTION_LOG#<id, 12 digits>#<at>`   |
//! | an OAuth2 flow by its `state`            | `PK=OAUTH_STATE#<sha256(state)>`, `SK=OAUTH_STATE`, TTL       |
//! | a connector's OAuth2 client (sealed)     | `PK=OAUTH_CLIENT#<servertype id>`, `SK=OAUTH_CLIENT`          |
//! | a counter (site ids, segment ids)         | `PK=COUNTER#<name>`, `SK=COUNTER` (atomic `ADD`)             |
//! | work that is due, by kind                 | sparse `DueIndex`: `DuePK=<kind>`, `DueAt<=now`              |
//!
//! Due work (outbox, cleanups, suspensions) is found through the sparse `DueIndex`,
//! never by scanning. Every family says in [`FAMILIES`] how account cleanup removes it;
//! a storage test checks every family against that rule.

use crate::domain::{AccountId, EventId, PartnerId, SubscriptionId};

use super::Keys;

pub const GSI1: &str = "GSI1";
pub const DUE_INDEX: &str = "DueIndex";

/// The kinds of due work in the sparse `DueIndex`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Events a crash left unpublished.
    Outbox,
    /// A cancelled account whose data is deleted at its effective date.
    Cleanup,
    /// A marketplace subscription whose payment failed, suspended after the grace period.
    Suspension,
    /// An outbound call to (re)try.
    Delivery,
    /// A shop's billing period that ends: the next one starts.
    BillingPeriod,
    /// A loyalty SMS to send; one partition per site (`SMS#<site id>`), since one
    /// partition takes about 1,000 writes/s.
    Sms,
    /// SMS jobs parked for an operator (listed, never due: the sort key is when).
    SmsParked,
    /// An OAuth2 connection whose access token is to be refreshed before it expires.
    OAuthRefresh,
}

impl Due {
    pub fn as_str(&self) -> &'static str {
        match self {
            Due::Outbox => "OUTBOX",
            Due::Cleanup => "CLEANUP",
            Due::Suspension => "SUSPENSION",
            Due::Delivery => "DELIVERY",
            Due::BillingPeriod => "BILLING_PERIOD",
            Due::Sms => "SMS",
            Due::SmsParked => "SMS_PARKED",
            Due::OAuthRefresh => "OAUTH_REFRESH",
        }
    }

    /// The index partition of this kind's work for one shard (`SMS#<site id>`).
    pub fn shard(&self, shard: &str) -> String {
        format!("{}#{shard}", self.as_str())
    }
}

pub fn partner(id: PartnerId) -> Keys {
    Keys::new(format!("PARTNER#{id}"), "PARTNER")
}

pub fn partner_token_gsi1pk(token_hash: &str) -> String {
    format!("PARTNER_TOKEN#{token_hash}")
}

pub fn partner_source(source: &str) -> Keys {
    Keys::new(format!("PARTNER_SOURCE#{source}"), "PARTNER_SOURCE")
}

/// The partition holding an account and everything that lives and dies with it.
pub fn account_partition(account: AccountId) -> String {
    format!("ACCOUNT#{account}")
}

pub fn account(id: AccountId) -> Keys {
    Keys::new(account_partition(id), "ACCOUNT")
}

pub fn partner_accounts_gsi1pk(partner: PartnerId) -> String {
    format!("PARTNER#{partner}#ACCOUNTS")
}

pub const SUBSCRIPTION_PREFIX: &str = "SUBSCRIPTION#";

pub fn subscription(account: AccountId, id: SubscriptionId) -> Keys {
    Keys::new(
        account_partition(account),
        format!("{SUBSCRIPTION_PREFIX}{id}"),
    )
}

pub fn profile(account: AccountId) -> Keys {
    Keys::new(account_partition(account), "PROFILE")
}

pub const TIMELINE_PREFIX: &str = "TIMELINE#";

pub fn timeline(account: AccountId, occurred_at: &str, event: EventId) -> Keys {
    Keys::new(
        account_partition(account),
        format!("{TIMELINE_PREFIX}{occurred_at}#{event}"),
    )
}

pub fn analytics_partition(account: AccountId) -> String {
    format!("ANALYTICS#{account}")
}

pub fn analytics_day(account: AccountId, day: &str) -> Keys {
    Keys::new(analytics_partition(account), format!("DAY#{day}"))
}

pub fn widget_key(key: &str) -> Keys {
    Keys::new(format!("WIDGET_KEY#{key}"), "WIDGET_KEY")
}

/// One entry of the idempotency ledger; `scope` keeps senders apart (a marketplace's
/// event ids, a partner's EventBridge envelope ids, ...).
pub fn ledger(scope: &str, message_id: &str) -> Keys {
    Keys::new(format!("LEDGER#{scope}#{message_id}"), "LEDGER")
}

pub fn tombstone(account: AccountId) -> Keys {
    Keys::new(format!("TOMBSTONE#{account}"), "TOMBSTONE")
}

pub fn cleanup_job(account: AccountId) -> Keys {
    Keys::new(format!("CLEANUP#{account}"), "CLEANUP")
}

pub fn outbox(event: EventId) -> Keys {
    Keys::new(format!("OUTBOX#{event}"), "OUTBOX")
}

pub fn delivery(id: &str) -> Keys {
    Keys::new(format!("DELIVERY#{id}"), "DELIVERY")
}

/// A shop's current plan selection and billing period (due when the period ends).
pub fn selection(account: AccountId) -> Keys {
    Keys::new(account_partition(account), "SELECTION")
}

/// A replaced selection, by when it was confirmed.
pub fn selection_history(account: AccountId, confirmed_at: &str) -> Keys {
    Keys::new(
        account_partition(account),
        format!("PAST_SELECTION#{confirmed_at}"),
    )
}

pub const USAGE_DAY_PREFIX: &str = "USAGE_DAY#";

/// A shop's metered day: its usage records (see `usage`).
pub fn usage_day(account: AccountId, day: &str) -> Keys {
    Keys::new(
        account_partition(account),
        format!("{USAGE_DAY_PREFIX}{day}"),
    )
}

pub const CHANGE_REQUEST_PREFIX: &str = "CHANGE_REQUEST#";

/// A subscription change request sent to the partner (contract 5.2), by message id.
pub fn change_request(account: AccountId, id: &str) -> Keys {
    Keys::new(
        account_partition(account),
        format!("{CHANGE_REQUEST_PREFIX}{id}"),
    )
}

pub const SEAT_PREFIX: &str = "SEAT#";

/// A user with access to a shop (its `seats`).
pub fn seat(account: AccountId, user: uuid::Uuid) -> Keys {
    Keys::new(account_partition(account), format!("{SEAT_PREFIX}{user}"))
}

/// An admin user (one per partner and email; see `admin`).
pub fn admin_user(id: uuid::Uuid) -> Keys {
    Keys::new(format!("ADMIN_USER#{id}"), "ADMIN_USER")
}

/// A used SSO link, by the hash of its payload (TTL: until it would have expired).
pub fn used_sso_link(hash: &str) -> Keys {
    Keys::new(format!("SSO_LINK#{hash}"), "SSO_LINK")
}

/// An admin session, by the hash of its token (TTL).
pub fn admin_session(hash: &str) -> Keys {
    Keys::new(format!("ADMIN_SESSION#{hash}"), "ADMIN_SESSION")
}

/// A welcome email's confirmation token, by its hash (TTL).
pub fn admin_confirm(hash: &str) -> Keys {
    Keys::new(format!("ADMIN_CONFIRM#{hash}"), "ADMIN_CONFIRM")
}

/// The plan catalog's current versions, one item per plan.
pub const PLANS_PK: &str = "PLANS";

pub fn plan_current(id: u32) -> Keys {
    Keys::new(PLANS_PK, format!("PLAN#{id:010}"))
}

/// Every version of a plan, kept for ever (selections name the version they confirmed).
pub fn plan_version(id: u32, version: u32) -> Keys {
    Keys::new(format!("PLAN#{id:010}"), format!("V#{version:010}"))
}

/// A failure counter of one fixed window (`window_start` in unix seconds).
pub fn throttle(scope: &str, window_start: i64) -> Keys {
    Keys::new(format!("THROTTLE#{scope}#{window_start}"), "THROTTLE")
}

pub fn sms_site(account: AccountId) -> Keys {
    Keys::new(account_partition(account), "SMS_SITE")
}

pub const SMS_SITES_GSI1PK: &str = "SMS_SITES";

pub const SMS_MEMBER_PREFIX: &str = "SMS_MEMBER#";

pub fn sms_member(account: AccountId, phone: &str) -> Keys {
    Keys::new(
        account_partition(account),
        format!("{SMS_MEMBER_PREFIX}{phone}"),
    )
}

pub fn sms_job(account: AccountId, action_id: &str) -> Keys {
    Keys::new(account_partition(account), format!("SMS_JOB#{action_id}"))
}

pub fn sms_member_jobs_gsi1pk(site: u64, phone: &str) -> String {
    format!("SMS_MEMBER#{site}#{phone}")
}

pub const SMS_SEGMENT_PREFIX: &str = "SMS_SEGMENT#";

pub fn sms_segment(account: AccountId, id: u64) -> Keys {
    Keys::new(
        account_partition(account),
        format!("{SMS_SEGMENT_PREFIX}{id:012}"),
    )
}

/// A site's segment `externalId` (unique per site): points at the segment.
pub fn sms_segment_external(account: AccountId, external_id: &str) -> Keys {
    Keys::new(
        account_partition(account),
        format!("SMS_SEGMENT_EXT#{external_id}"),
    )
}

pub fn sub_account(account: AccountId) -> Keys {
    Keys::new(account_partition(account), "SUBACCOUNT")
}

pub fn partner_sub_accounts_gsi1pk(partner: PartnerId) -> String {
    format!("PARTNER#{partner}#SUBACCOUNTS")
}

/// A sub-account's number as its index sort key (fixed width: sorts as numbers do).
pub fn sub_account_gsi1sk(number: u64) -> String {
    format!("{number:012}")
}

/// A partner's external id of a sub-account (unique per partner): holds its number.
pub fn sub_account_external(partner: PartnerId, external_id: &str) -> Keys {
    Keys::new(
        format!("SUBACCOUNT_EXT#{partner}#{external_id}"),
        "SUBACCOUNT_EXT",
    )
}

pub fn embed_origin(origin: &str) -> Keys {
    Keys::new(format!("EMBED_ORIGIN#{origin}"), "EMBED_ORIGIN")
}

pub const CONNECTION_PREFIX: &str = "CONNECTION#";

pub fn connection(account: AccountId, id: u64) -> Keys {
    Keys::new(
        account_partition(account),
        format!("{CONNECTION_PREFIX}{id:012}"),
    )
}

pub fn connection_log_prefix(id: u64) -> String {
    format!("CONNECTION_LOG#{id:012}#")
}

pub fn connection_log(account: AccountId, id: u64, at: &str) -> Keys {
    Keys::new(
        account_partition(account),
        format!("{}{at}", connection_log_prefix(id)),
    )
}

pub fn oauth_state(hash: &str) -> Keys {
    Keys::new(format!("OAUTH_STATE#{hash}"), "OAUTH_STATE")
}

pub fn oauth_client(servertype: u64) -> Keys {
    Keys::new(format!("OAUTH_CLIENT#{servertype}"), "OAUTH_CLIENT")
}

pub fn counter(name: &str) -> Keys {
    Keys::new(format!("COUNTER#{name}"), "COUNTER")
}

pub const FAILED_DELIVERIES_GSI1PK: &str = "DELIVERIES#FAILED";

pub const DEAD_LETTER_PK: &str = "DEADLETTER";

pub fn dead_letter(parked_at: &str, id: &str) -> Keys {
    Keys::new(DEAD_LETTER_PK, format!("{parked_at}#{id}"))
}

/// How account cleanup (a cancelled account past its effective date) treats a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Deleted with the account's partition (`ACCOUNT#<id>`, paginated batch deletes).
    AccountPartition,
    /// Deleted with the account's analytics partition (`ANALYTICS#<id>`).
    AnalyticsPartition,
    /// Deleted by key: the keys are listed on the account's subscription.
    ListedOnSubscription,
    /// The cleanup job itself: deleted in the transaction that writes the tombstone.
    DeletedWhenDone,
    /// Written by cleanup and kept: the facts of the cancellation.
    Tombstone,
    /// Carries a TTL (`expires_at`); DynamoDB removes it.
    Expires,
    /// Not account data (partners, the outbox, dead letters): cleanup leaves it alone.
    NotAccountData,
    /// Outside the account's partition, deleted by key with the account (a
    /// sub-account's external id claim: the embed API's `DELETE /api/subaccount`).
    DeletedWithAccount,
}

/// A key family: what its items are, how they are keyed and how cleanup removes them.
#[derive(Debug, Clone, Copy)]
pub struct KeyFamily {
    pub name: &'static str,
    /// The partition key's prefix (or the whole key when it has no variable part).
    pub pk_prefix: &'static str,
    /// The sort key's prefix within that partition ("" matches any).
    pub sk_prefix: &'static str,
    pub cleanup: Cleanup,
}

const fn family(
    name: &'static str,
    pk_prefix: &'static str,
    sk_prefix: &'static str,
    cleanup: Cleanup,
) -> KeyFamily {
    KeyFamily {
        name,
        pk_prefix,
        sk_prefix,
        cleanup,
    }
}

/// Every key family of the table.
pub const FAMILIES: &[KeyFamily] = &[
    family("partner", "PARTNER#", "PARTNER", Cleanup::NotAccountData),
    family(
        "partner source",
        "PARTNER_SOURCE#",
        "PARTNER_SOURCE",
        Cleanup::NotAccountData,
    ),
    family("account", "ACCOUNT#", "ACCOUNT", Cleanup::AccountPartition),
    family(
        "subscription",
        "ACCOUNT#",
        SUBSCRIPTION_PREFIX,
        Cleanup::AccountPartition,
    ),
    family("profile", "ACCOUNT#", "PROFILE", Cleanup::AccountPartition),
    family(
        "selection history",
        "ACCOUNT#",
        "PAST_SELECTION#",
        Cleanup::AccountPartition,
    ),
    family(
        "selection",
        "ACCOUNT#",
        "SELECTION",
        Cleanup::AccountPartition,
    ),
    family(
        "metered day",
        "ACCOUNT#",
        USAGE_DAY_PREFIX,
        Cleanup::AccountPartition,
    ),
    family("seat", "ACCOUNT#", SEAT_PREFIX, Cleanup::AccountPartition),
    family(
        "change request",
        "ACCOUNT#",
        CHANGE_REQUEST_PREFIX,
        Cleanup::AccountPartition,
    ),
    family(
        "timeline",
        "ACCOUNT#",
        TIMELINE_PREFIX,
        Cleanup::AccountPartition,
    ),
    family(
        "analytics day",
        "ANALYTICS#",
        "DAY#",
        Cleanup::AnalyticsPartition,
    ),
    family(
        "widget key",
        "WIDGET_KEY#",
        "WIDGET_KEY",
        Cleanup::ListedOnSubscription,
    ),
    family("ledger", "LEDGER#", "LEDGER", Cleanup::Expires),
    family("tombstone", "TOMBSTONE#", "TOMBSTONE", Cleanup::Tombstone),
    family(
        "cleanup job",
        "CLEANUP#",
        "CLEANUP",
        Cleanup::DeletedWhenDone,
    ),
    family("outbox", "OUTBOX#", "OUTBOX", Cleanup::NotAccountData),
    family("dead letter", DEAD_LETTER_PK, "", Cleanup::NotAccountData),
    // Delivered ones expire; failed ones stay for operators (not account data).
    family("delivery", "DELIVERY#", "DELIVERY", Cleanup::NotAccountData),
    family("failure counter", "THROTTLE#", "THROTTLE", Cleanup::Expires),
    family("current plan", PLANS_PK, "PLAN#", Cleanup::NotAccountData),
    // A partner's staff, not an account's data (it may see several shops).
    family(
        "admin user",
        "ADMIN_USER#",
        "ADMIN_USER",
        Cleanup::NotAccountData,
    ),
    family("used SSO link", "SSO_LINK#", "SSO_LINK", Cleanup::Expires),
    family(
        "admin session",
        "ADMIN_SESSION#",
        "ADMIN_SESSION",
        Cleanup::Expires,
    ),
    family(
        "admin confirmation",
        "ADMIN_CONFIRM#",
        "ADMIN_CONFIRM",
        Cleanup::Expires,
    ),
    family("plan version", "PLAN#", "V#", Cleanup::NotAccountData),
    family(
        "sms site",
        "ACCOUNT#",
        "SMS_SITE",
        Cleanup::AccountPartition,
    ),
    family(
        "sms member",
        "ACCOUNT#",
        SMS_MEMBER_PREFIX,
        Cleanup::AccountPartition,
    ),
    family("sms job", "ACCOUNT#", "SMS_JOB#", Cleanup::AccountPartition),
    family(
        "sms segment",
        "ACCOUNT#",
        SMS_SEGMENT_PREFIX,
        Cleanup::AccountPartition,
    ),
    family(
        "sms segment external id",
        "ACCOUNT#",
        "SMS_SEGMENT_EXT#",
        Cleanup::AccountPartition,
    ),
    family("counter", "COUNTER#", "COUNTER", Cleanup::NotAccountData),
    family(
        "sub-account",
        "ACCOUNT#",
        "SUBACCOUNT",
        Cleanup::AccountPartition,
    ),
    family(
        "sub-account external id",
        "SUBACCOUNT_EXT#",
        "SUBACCOUNT_EXT",
        Cleanup::DeletedWithAccount,
    ),
    family(
        "embed origin",
        "EMBED_ORIGIN#",
        "EMBED_ORIGIN",
        Cleanup::NotAccountData,
    ),
    family(
        "connection",
        "ACCOUNT#",
        CONNECTION_PREFIX,
        Cleanup::AccountPartition,
    ),
    family(
        "connection log",
        "ACCOUNT#",
        "CONNECTION_LOG#",
        Cleanup::AccountPartition,
    ),
    family(
        "oauth state",
        "OAUTH_STATE#",
        "OAUTH_STATE",
        Cleanup::Expires,
    ),
    family(
        "oauth client",
        "OAUTH_CLIENT#",
        "OAUTH_CLIENT",
        Cleanup::NotAccountData,
    ),
];

/// The family an item belongs to, by its keys.
pub fn family_of(pk: &str, sk: &str) -> Option<&'static KeyFamily> {
    FAMILIES
        .iter()
        .find(|f| pk.starts_with(f.pk_prefix) && sk.starts_with(f.sk_prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_built_here_belongs_to_one_family() {
        let account = AccountId::random();
        let keys = [
            partner(PartnerId::random()),
            partner_source("partner.a"),
            throttle("IP#127.0.0.1", 1_800_000_000),
            plan_current(1),
            admin_user(uuid::Uuid::nil()),
            used_sso_link("h"),
            admin_session("h"),
            admin_confirm("h"),
            selection(account),
            usage_day(account, "2026-01-01"),
            seat(account, uuid::Uuid::nil()),
            change_request(account, "msg_1"),
            selection_history(account, "2026-01-01T00:00:00.000000Z"),
            plan_version(1, 2),
            account_keys_sample(account),
            subscription(account, SubscriptionId::for_plan(account)),
            profile(account),
            timeline(account, "2026-01-01T00:00:00.000000Z", EventId::random()),
            analytics_day(account, "2026-01-01"),
            widget_key("wk_1"),
            ledger("scope", "id"),
            tombstone(account),
            cleanup_job(account),
            outbox(EventId::random()),
            dead_letter("2026", "x"),
            delivery("msg_1"),
            sms_site(account),
            sms_member(account, "+17707651750"),
            sms_job(account, "a1"),
            sms_segment(account, 7),
            sms_segment_external(account, "ext-1"),
            counter("SEGMENT"),
            sub_account(account),
            sub_account_external(PartnerId::random(), "wood_123"),
            embed_origin("https://acme.com"),
            connection(account, 12345),
            connection_log(account, 12345, "2026-01-01T00:00:00.000000Z"),
            oauth_state("h"),
            oauth_client(456),
        ];
        for k in keys {
            let matching: Vec<_> = FAMILIES
                .iter()
                .filter(|f| k.pk.starts_with(f.pk_prefix) && k.sk.starts_with(f.sk_prefix))
                .collect();
            assert_eq!(matching.len(), 1, "{k:?}: {matching:?}");
        }
    }

    fn account_keys_sample(id: AccountId) -> Keys {
        account(id)
    }
}
