//! Storage, outbox and service tests against the DynamoDB/EventBridge/KMS emulator.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::{
    Config, Hub,
    accounts::{AccountError, ShopProfile},
    clock,
    domain::{AccountId, CurrencyCode, Email, Locale, Platform, ShopDomain, ShopName, TzOffset},
    events::{AccountDeleted, EventPayload, HubEvent, OutboxRecord},
    store::{Inbound, Keys, Planned, Query, Record, StoreError, Tx, TxError},
    timeline::Appended,
};

const PUB_A: &str = include_str!("../../tests/fixtures/keys/partner-a.key.pub");
fn acct() -> shared::domain::AwsAccountId {
    shared::domain::AwsAccountId::parse("111122223333").unwrap()
}

const PUB_B: &str = include_str!("../../tests/fixtures/keys/partner-b.key.pub");

async fn hub(label: &str) -> Hub {
    let (sdk, resources) = hub_emulator::test_resources(label).await.expect("emulator");
    let config = Config::from_lookup(|name| match name {
        "TABLE_NAME" => resources.lookup("HubTable", None),
        "EVENT_BUS_NAME" => resources.lookup("HubEventBus", None),
        "KMS_KEY_ID" => resources.lookup("SecretsKey", None),
        _ => None,
    })
    .unwrap();
    Hub::new(config, &sdk)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    group: String,
    n: u32,
    text: String,
}

impl Record for Note {
    fn keys(&self) -> Keys {
        Keys::new(format!("NOTE#{}", self.group), format!("N#{:04}", self.n))
    }
}

fn note(group: &str, n: u32) -> Note {
    Note {
        group: group.into(),
        n,
        text: format!("note {n}"),
    }
}

fn profile(host: &str) -> ShopProfile {
    ShopProfile {
        domain: ShopDomain::parse(host).unwrap(),
        name: ShopName::parse("My Shop").unwrap(),
        currency_code: CurrencyCode::parse("USD").unwrap(),
        contact_email: Email::parse("hello@releva.ai").unwrap(),
        timezone_offset: TzOffset::parse("+0300").unwrap(),
        locale: Locale::parse("en").unwrap(),
        platform: Platform::Custom,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conditional_put_get_and_paginated_query() {
    let hub = hub("store").await;
    let table = &hub.table;
    table.put_new(&note("a", 1)).await.unwrap();
    assert!(matches!(
        table.put_new(&note("a", 1)).await,
        Err(StoreError::ConditionFailed)
    ));
    assert_eq!(
        table.get::<Note>(&note("a", 1).keys()).await.unwrap(),
        Some(note("a", 1))
    );
    assert_eq!(table.get::<Note>(&note("a", 2).keys()).await.unwrap(), None);

    for n in 2..=25 {
        table.put(&note("a", n)).await.unwrap();
    }
    // Pages of 10 are followed to the end.
    let all: Vec<Note> = table
        .query_all(&Query::partition("NOTE#a").page_size(10))
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|n| n.n).collect::<Vec<_>>(),
        (1..=25).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_writes_all_or_nothing() {
    let hub = hub("txn").await;
    let table = &hub.table;
    table.put_new(&note("t", 1)).await.unwrap();
    let mut plans = 0;
    let result: Result<(), TxError> = hub
        .uow
        .apply(|| {
            plans += 1;
            async {
                let mut tx = Tx::new();
                tx.put_new(&note("t", 2))?.put_new(&note("t", 1))?; // exists: cancels all
                tx.event(deleted_event());
                Ok(Planned::new(tx, ()))
            }
        })
        .await;
    assert!(matches!(result, Err(TxError::Conflict)), "{result:?}");
    assert_eq!(
        plans, 5,
        "a lost condition re-plans, a bounded number of times"
    );
    assert_eq!(table.get::<Note>(&note("t", 2).keys()).await.unwrap(), None);
    assert!(
        outbox_items(&hub).await.is_empty(),
        "no outbox item, so no event, for a change that did not commit"
    );
}

/// Every outbox item in the table (what the stream hands the relay).
async fn outbox_items(hub: &Hub) -> Vec<OutboxRecord> {
    hub.table
        .query_all(&Query::due(
            shared::store::keys::Due::Outbox,
            clock::sortable(clock::now() + Duration::from_secs(60)),
        ))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_unit_of_work_refuses_more_than_dynamodbs_100_actions() {
    let hub = hub("txn-limit").await;
    let result: Result<(), TxError> = hub
        .uow
        .apply(|| async {
            let mut tx = Tx::new();
            for n in 0..101 {
                tx.put(&note("big", n))?;
            }
            Ok(Planned::new(tx, ()))
        })
        .await;
    assert!(
        matches!(result, Err(TxError::TooLarge { actions: 101 })),
        "{result:?}"
    );
    let stored: Vec<Note> = hub
        .table
        .query_all(&Query::partition("NOTE#big"))
        .await
        .unwrap();
    assert!(stored.is_empty());
    // 100 is fine: 99 puts and one event.
    hub.uow
        .apply(|| async {
            let mut tx = Tx::new();
            for n in 0..99 {
                tx.put(&note("big", n))?;
            }
            tx.event(deleted_event());
            Ok::<_, TxError>(Planned::new(tx, ()))
        })
        .await
        .unwrap();
    let stored: Vec<Note> = hub
        .table
        .query_all(&Query::partition("NOTE#big"))
        .await
        .unwrap();
    assert_eq!(stored.len(), 99);
}

fn deleted_event() -> HubEvent {
    HubEvent::new(EventPayload::AccountDeleted(AccountDeleted {
        customer_id: "c".into(),
        items_deleted: 0,
    }))
}

#[tokio::test(flavor = "multi_thread")]
async fn one_ledger_answers_redeliveries_and_refuses_reused_ids() {
    let hub = hub("ledger").await;
    let inbound = |hash: &str| Inbound::new("scope-a", "message-1", "test", hash);
    let mut plans = 0;
    let mut deliver = async |hash: &str, n: u32| -> Result<_, TxError> {
        hub.uow
            .apply_inbound(&inbound(hash), None, || {
                plans += 1;
                async move {
                    let mut tx = Tx::new();
                    tx.put(&note("ledger", n))?;
                    Ok(Planned::new(tx, n))
                }
            })
            .await
    };
    // A first delivery reads no ledger: its entry's condition in the transaction is
    // the check (one round trip, the transaction).
    let (first, trips) = shared::round_trips::measure(deliver("hash-1", 1)).await;
    assert_eq!(first.unwrap(), shared::store::Applied::Committed(1));
    assert_eq!(
        trips.calls,
        ["DynamoDB.TransactWriteItems"],
        "no ledger read for a first delivery"
    );
    // Same id, same body: the stored outcome, and nothing is written (the entry's
    // condition failed, then the ledger was read).
    assert_eq!(
        deliver("hash-1", 2).await.unwrap(),
        shared::store::Applied::Duplicate(1)
    );
    // Same id, another body: refused.
    assert!(matches!(
        deliver("hash-2", 3).await,
        Err(TxError::Reused { .. })
    ));
    assert_eq!(plans, 3, "each delivery planned once");
    let stored: Vec<Note> = hub
        .table
        .query_all(&Query::partition("NOTE#ledger"))
        .await
        .unwrap();
    assert_eq!(stored.iter().map(|n| n.n).collect::<Vec<_>>(), [1]);
    // Another scope has ids of its own.
    let other = Inbound::new("scope-b", "message-1", "test", "hash-9");
    let applied = hub
        .uow
        .apply_inbound(&other, None, || async {
            Ok::<_, TxError>(Planned::nothing(7))
        })
        .await
        .unwrap();
    assert_eq!(applied, shared::store::Applied::Committed(7));
}

#[tokio::test(flavor = "multi_thread")]
async fn partners_authenticate_by_token_only() {
    let hub = hub("partners").await;
    let reg = hub.partners.register("Acme", PUB_A, None).await.unwrap();
    let partner = hub
        .partners
        .authenticate(Some(&reg.partner_token))
        .await
        .unwrap();
    assert_eq!(partner.id, reg.partner_id);
    assert_ne!(
        partner.token_hash, reg.partner_token,
        "only the hash is stored"
    );
    assert!(hub.partners.authenticate(Some("pt_wrong")).await.is_err());
    assert!(hub.partners.authenticate(None).await.is_err());
    assert!(
        hub.partners
            .register("Bad", "not a key", None)
            .await
            .is_err()
    );

    let kid = hub.partners.add_key(reg.partner_id, PUB_B).await.unwrap();
    let partner = hub.partners.get(reg.partner_id).await.unwrap().unwrap();
    assert_eq!(partner.keys.len(), 2);
    hub.partners.remove_key(reg.partner_id, &kid).await.unwrap();
    assert_eq!(
        hub.partners
            .get(reg.partner_id)
            .await
            .unwrap()
            .unwrap()
            .keys
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn provisioning_is_unique_per_shop_and_seals_credentials() {
    let hub = hub("accounts").await;
    let a = hub.partners.register("A", PUB_A, None).await.unwrap();
    let b = hub.partners.register("B", PUB_B, None).await.unwrap();
    let partner_a = hub.partners.get(a.partner_id).await.unwrap().unwrap();
    let partner_b = hub.partners.get(b.partner_id).await.unwrap().unwrap();

    let first = hub
        .accounts
        .provision_shop(&partner_a, profile("Shop-One.com"))
        .await
        .unwrap();
    assert!(first.created);
    let id = AccountId::for_shop(&ShopDomain::parse("shop-one.com").unwrap());
    let stored = hub.accounts.get(id).await.unwrap().unwrap();
    let sealed = stored.credentials.expect("a shop has credentials");
    assert!(
        !sealed
            .access_token
            .contains(&first.credentials.access_token)
    );
    assert!(!sealed.secret_key.contains(&first.credentials.secret_key));

    let again = hub
        .accounts
        .provision_shop(&partner_a, profile("shop-one.com"))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.credentials, first.credentials);
    assert_eq!(again.account.pages, first.account.pages);

    let taken = hub
        .accounts
        .provision_shop(&partner_b, profile("shop-one.com"))
        .await;
    assert!(matches!(taken, Err(AccountError::ShopTaken(_))));
    assert_eq!(
        hub.accounts
            .list_for_partner(a.partner_id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        hub.accounts
            .list_for_partner(b.partner_id)
            .await
            .unwrap()
            .is_empty()
    );

    // One committed change, one outbox item with its event; the repeat and the refused
    // call committed nothing, so they staged nothing.
    let items = outbox_items(&hub).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].events.len(), 1);
    assert_eq!(items[0].events[0].detail_type, "account.provisioned");
    let detail: serde_json::Value = serde_json::from_str(&items[0].events[0].detail).unwrap();
    assert_eq!(detail["accountId"], first.account.id.to_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changes_events_are_one_outbox_item_that_the_relay_and_republish_publish() {
    let hub = hub("outbox").await;
    // Thirteen changes of two events each, two minutes ago, and one fresh change.
    for _ in 0..13 {
        let mut first = deleted_event();
        first.occurred_at = clock::now() - Duration::from_secs(120);
        let mut tx = Tx::new();
        tx.event(first).event(deleted_event());
        assert!(hub.uow.commit_once(tx).await.unwrap());
    }
    let mut tx = Tx::new();
    tx.event(deleted_event());
    assert!(hub.uow.commit_once(tx).await.unwrap());
    let items = outbox_items(&hub).await;
    assert_eq!(items.len(), 14, "one item per change");

    // The relay publishes a batch's events in order, ten per PutEvents.
    let report = hub.outbox.relay(&items).await.unwrap();
    assert_eq!((report.records, report.events), (14, 27));
    assert!(report.complete(), "{report:?}");

    // An operator republishes a window: only the changes staged in it.
    let now = clock::now();
    let window = hub
        .outbox
        .republish(
            now - Duration::from_secs(300),
            now - Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!((window.records, window.events), (13, 26));
    assert!(window.complete());
    let empty = hub
        .outbox
        .republish(
            now - Duration::from_secs(3600),
            now - Duration::from_secs(600),
        )
        .await
        .unwrap();
    assert_eq!(empty.records, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn timeline_appends_each_event_once() {
    let hub = hub("timeline").await;
    let account = AccountId::random();
    let event = deleted_event();
    assert_eq!(
        hub.timeline.append(account, &event).await.unwrap(),
        Appended::New
    );
    assert_eq!(
        hub.timeline.append(account, &event).await.unwrap(),
        Appended::Duplicate
    );
    let entries = hub.timeline.list(account).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].event_type, "account.deleted");
    // The newest entries, newest first, in one page.
    let mut ids = vec![event.event_id];
    for minutes in 1..=4 {
        let mut later = deleted_event();
        later.occurred_at = event.occurred_at + time::Duration::minutes(minutes);
        hub.timeline.append(account, &later).await.unwrap();
        ids.push(later.event_id);
    }
    let (latest, trips) = shared::round_trips::measure(hub.timeline.latest(account, 2)).await;
    let latest: Vec<_> = latest.unwrap().iter().map(|e| e.event_id).collect();
    assert_eq!(latest, [ids[4], ids[3]]);
    assert_eq!(trips.round_trips, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn analytics_days_count_atomically_and_summarise_by_range() {
    use shared::analytics::WidgetReport;
    let hub = hub("analytics").await;
    let account = AccountId::random();
    let now = clock::now();
    let reports = [
        ("u1", "s1", Some(("hello", true))),
        ("u1", "s1", Some(("hello", true))),
        ("u2", "s2", Some(("no idea", false))),
        ("u3", "s3", None),
    ];
    for (user, session, query) in reports {
        let report = WidgetReport {
            user_id: user.into(),
            session_id: session.into(),
            query: query.map(|(q, found)| (q.to_owned(), found)),
            at: now,
        };
        hub.analytics.record(account, &report).await.unwrap();
    }
    let summary = hub
        .analytics
        .summary(account, now - Duration::from_secs(86_400), now)
        .await
        .unwrap();
    assert_eq!(summary.total_unique_sessions, 3);
    assert_eq!(summary.total_unique_users, 3);
    assert_eq!(summary.queries.total, 3);
    assert_eq!(summary.queries.total_no_content, 1);
    assert_eq!(summary.queries.top_queries, ["hello", "no idea"]);
    assert_eq!(summary.queries.top_queries_no_content, ["no idea"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_approval_goes_live_at_once_and_sources_belong_to_one_partner() {
    use shared::{
        domain::{AccountStatus, ExternalId},
        partners::PartnerError,
        subscriptions::{CreateSubscription, Outcome, Subscriptions, TierCatalog},
    };
    let hub = hub("autoapprove").await;
    let subscriptions = Subscriptions::new(hub.uow.clone(), TierCatalog::default(), true);
    let a = hub.partners.register("A", PUB_A, None).await.unwrap();
    let b = hub.partners.register("B", PUB_B, None).await.unwrap();
    let bus = "arn:aws:events:us-east-1:111122223333:event-bus/a";
    let route = hub
        .partners
        .set_event_route(a.partner_id, "partner.a", bus, &[acct()])
        .await
        .unwrap();
    assert!(matches!(
        hub.partners
            .set_event_route(b.partner_id, "partner.a", bus, &[acct()])
            .await,
        Err(PartnerError::SourceTaken(_))
    ));
    assert!(matches!(
        hub.partners
            .set_event_route(b.partner_id, "partner-hub", bus, &[acct()])
            .await,
        Err(PartnerError::InvalidRoute(_))
    ));
    assert!(matches!(
        hub.partners
            .set_event_route(b.partner_id, "partner.b", "not-an-arn", &[acct()])
            .await,
        Err(PartnerError::InvalidRoute(_))
    ));
    let partner = hub.partners.get(a.partner_id).await.unwrap().unwrap();
    assert_eq!(partner.event_route.unwrap().bus_arn, bus);

    let request = CreateSubscription {
        customer: ExternalId::parse("c-1").unwrap(),
        tier: "starter".into(),
        contract_length_months: 1,
        website: "https://c1.example.com/".into(),
        template: "t".into(),
        company_name: "C1".into(),
    };
    let inbound = Inbound::new(
        Subscriptions::ledger_scope(a.partner_id),
        "envelope-1",
        "Create Subscription",
        "hash",
    );
    assert_eq!(
        subscriptions
            .create_or_upgrade(&route, &inbound, request)
            .await
            .unwrap(),
        Outcome::Created
    );
    let account = AccountId::for_external(a.partner_id, &ExternalId::parse("c-1").unwrap());
    let plan = subscriptions.plan(account).await.unwrap().unwrap();
    assert!(plan.approved_at.is_some());
    assert_eq!(
        hub.accounts.get(account).await.unwrap().unwrap().status,
        AccountStatus::Active
    );
    assert!(
        !subscriptions.approve(account).await.unwrap(),
        "already approved"
    );
    assert_eq!(
        subscriptions
            .widget_key(&plan.installation.unwrap().widget_key)
            .await
            .unwrap()
            .unwrap()
            .account_id,
        account
    );
}

/// Every item of the table, by its keys and its attributes as JSON (test only: a Scan).
async fn scan_all(hub: &Hub) -> Vec<(String, String, serde_json::Value)> {
    hub.table
        .scan_all()
        .await
        .unwrap()
        .into_iter()
        .map(|item| {
            let value: serde_json::Value = serde_dynamo::from_item(item).unwrap();
            let key = |k: &str| value[k].as_str().unwrap_or_default().to_owned();
            (key("PK"), key("SK"), value.clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn account_cleanup_removes_every_key_family_as_the_key_table_says() {
    use shared::{
        analytics::WidgetReport,
        domain::ExternalId,
        store::keys::{Cleanup, family_of},
        subscriptions::{CancelSubscription, CreateSubscription},
    };
    let hub = hub("cleanup-families").await;
    let reg = hub.partners.register("A", PUB_A, None).await.unwrap();
    let route = hub
        .partners
        .set_event_route(
            reg.partner_id,
            "partner.cleanup",
            "arn:aws:events:us-east-1:111122223333:event-bus/a",
            &[acct()],
        )
        .await
        .unwrap();
    let customer = ExternalId::parse("c-cleanup").unwrap();
    let account = AccountId::for_external(reg.partner_id, &customer);
    let scope = shared::subscriptions::Subscriptions::ledger_scope(reg.partner_id);
    hub.subscriptions
        .create_or_upgrade(
            &route,
            &Inbound::new(&scope, "env-create", "Create Subscription", "h1"),
            CreateSubscription {
                customer: customer.clone(),
                tier: "growth".into(),
                contract_length_months: 1,
                website: "https://c.example.com/".into(),
                template: "t".into(),
                company_name: "C".into(),
            },
        )
        .await
        .unwrap();
    hub.analytics
        .record(
            account,
            &WidgetReport {
                user_id: "u".into(),
                session_id: "s".into(),
                query: Some(("q".into(), true)),
                at: clock::now(),
            },
        )
        .await
        .unwrap();
    hub.timeline
        .append(account, &deleted_event())
        .await
        .unwrap();

    // Before: the account's data spans these families, and every item has a family.
    let mentions = |value: &serde_json::Value, pk: &str| {
        pk.contains(&account.to_string())
            || value.get("account_id").and_then(|v| v.as_str()) == Some(&account.to_string())
    };
    let before = scan_all(&hub).await;
    let mut families = std::collections::BTreeSet::new();
    for (pk, sk, value) in &before {
        let family = family_of(pk, sk).unwrap_or_else(|| panic!("no key family for {pk} / {sk}"));
        if mentions(value, pk) {
            families.insert(family.name);
        }
    }
    for expected in [
        "account",
        "subscription",
        "timeline",
        "analytics day",
        "widget key",
        "ledger",
    ] {
        assert!(families.contains(expected), "{expected}: {families:?}");
    }

    // A cancellation effective in the past deletes at once.
    hub.subscriptions
        .cancel(
            &route,
            &Inbound::new(&scope, "env-cancel", "Cancellation", "h2"),
            CancelSubscription {
                customer,
                effective_date: clock::now() - Duration::from_secs(60),
            },
        )
        .await
        .unwrap();

    // After: only what the key table says survives (tombstone, expiring ledger entries).
    let mut kept = std::collections::BTreeSet::new();
    for (pk, sk, value) in scan_all(&hub).await {
        let family = family_of(&pk, &sk).unwrap_or_else(|| panic!("no key family for {pk} / {sk}"));
        if !mentions(&value, &pk) {
            continue;
        }
        match family.cleanup {
            Cleanup::Tombstone | Cleanup::NotAccountData => {}
            Cleanup::Expires => assert!(
                value.get("expires_at").and_then(|v| v.as_i64()).is_some(),
                "{pk}: an expiring family without a TTL"
            ),
            other => panic!("{pk} / {sk} ({}) survived cleanup ({other:?})", family.name),
        }
        kept.insert(family.name);
    }
    assert!(kept.contains("tombstone"), "{kept:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sso_links_are_single_use_and_users_unique_by_partner_and_email() {
    use shared::{
        admin::AdminError,
        admin::SsoRequest,
        domain::{AccountId, Email, PartnerId},
    };
    let hub = hub("admin").await;
    let now = shared::clock::now();
    let (p, q) = (PartnerId::random(), PartnerId::random());
    // Shops of p (a, b) and of q (c): a link signs in only to its partner's shops.
    let shop_of = async |partner: PartnerId| {
        let id = AccountId::random();
        let account = shared::accounts::Account {
            id,
            partner_id: partner,
            kind: shared::domain::AccountKind::Shop,
            external_id: shared::domain::ExternalId::parse(&id.to_string()).unwrap(),
            status: shared::domain::AccountStatus::Active,
            shop: None,
            credentials: None,
            billing: shared::domain::BillingOwner::Hub,
            pages: Vec::new(),
            running: true,
            paused_intervals: Vec::new(),
            access_token_hash: None,
            created_at: shared::clock::sortable(now),
            updated_at: shared::clock::sortable(now),
        };
        hub.table.put(&account).await.unwrap();
        id
    };
    let (shop_a, shop_b, shop_c) = (shop_of(p).await, shop_of(p).await, shop_of(q).await);
    let request = |partner, shop, link: &str| SsoRequest {
        partner,
        shop,
        email: Email::parse("Owner@Shop.com").unwrap(),
        first_name: "Ana".into(),
        last_name: "Ionescu".into(),
        link: link.into(),
        link_expires_at: now.unix_timestamp() + 300,
    };

    // First link: a new user (with a confirmation token), signed in.
    let first = hub
        .admin
        .sign_in(&request(p, shop_a, "link-1"), now)
        .await
        .unwrap();
    assert!(first.confirm_token.is_some());
    assert_eq!(first.user.shops, vec![shop_a]);
    let (session, user) = hub
        .admin
        .session(&first.session_token, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((session.partner_id, user.id), (p, first.user.id));

    // The same link again: refused, no session.
    assert!(matches!(
        hub.admin.sign_in(&request(p, shop_a, "link-1"), now).await,
        Err(AdminError::LinkUsed)
    ));

    // Another link for another shop of the same partner: the same user, both shops.
    let second = hub
        .admin
        .sign_in(&request(p, shop_b, "link-2"), now)
        .await
        .unwrap();
    assert_eq!(second.user.id, first.user.id);
    assert!(second.confirm_token.is_none());
    assert_eq!(second.user.shops, vec![shop_a, shop_b]);

    // Another partner, the same email: another user, who sees only its own shop; a
    // link naming another partner's shop signs no one in.
    assert!(matches!(
        hub.admin.sign_in(&request(q, shop_b, "link-3"), now).await,
        Err(AdminError::UnknownShop)
    ));
    let other = hub
        .admin
        .sign_in(&request(q, shop_c, "link-4"), now)
        .await
        .unwrap();
    assert_ne!(other.user.id, first.user.id);
    assert_eq!(other.user.shops, vec![shop_c]);
    // A session is read with its user in one round trip (the token names the user).
    let (_, trips) =
        shared::round_trips::measure(hub.admin.session(&other.session_token, now)).await;
    assert_eq!(trips.round_trips, 1, "{:?}", trips.calls);

    // Sessions end on sign-out and at their expiry; unknown tokens open nothing.
    hub.admin.sign_out(&session).await.unwrap();
    assert!(
        hub.admin
            .session(&first.session_token, now)
            .await
            .unwrap()
            .is_none()
    );
    let later = now + time::Duration::seconds(shared::admin::SESSION_SECONDS + 1);
    assert!(
        hub.admin
            .session(&second.session_token, later)
            .await
            .unwrap()
            .is_none()
    );
    assert!(hub.admin.session("ses_guess", now).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_sealed_under_a_cached_data_key_and_old_values_still_open() {
    use shared::round_trips::measure;
    let hub = hub("sealer").await;
    let sealer = hub.accounts.sealer();
    let (first, cold) = measure(sealer.seal("s3cret", "ACCOUNT#1", "secretKey")).await;
    let first = first.unwrap();
    assert_eq!(cold.calls.len(), 1, "one data key: {cold:?}");
    assert!(cold.calls[0].contains("GenerateDataKey"), "{cold:?}");
    let (second, warm) = measure(sealer.seal("other", "ACCOUNT#2", "secretKey")).await;
    let second = second.unwrap();
    assert!(warm.calls.is_empty(), "the cached key seals: {warm:?}");
    assert!(first.starts_with("v2.") && !first.contains("s3cret"));
    assert_ne!(first, second);

    let (opened, calls) = measure(sealer.open(&first, "ACCOUNT#1", "secretKey")).await;
    assert_eq!(opened.unwrap(), "s3cret");
    assert!(calls.calls.is_empty(), "{calls:?}");
    // Bound to its record and field.
    assert!(sealer.open(&first, "ACCOUNT#2", "secretKey").await.is_err());
    assert!(
        sealer
            .open(&first, "ACCOUNT#1", "accessToken")
            .await
            .is_err()
    );
    let mut tampered = first.clone();
    tampered.pop();
    tampered.push(if first.ends_with('A') { 'B' } else { 'A' });
    assert!(
        sealer
            .open(&tampered, "ACCOUNT#1", "secretKey")
            .await
            .is_err()
    );

    // Another process unwraps the data key once, then opens from its cache.
    let (sdk, _) = hub_emulator::test_resources("sealer-fresh").await.unwrap();
    let fresh = Hub::new(hub.config.clone(), &sdk);
    let (opened, calls) = measure(
        fresh
            .accounts
            .sealer()
            .open(&first, "ACCOUNT#1", "secretKey"),
    )
    .await;
    assert_eq!(opened.unwrap(), "s3cret");
    assert_eq!(calls.calls.len(), 1, "{calls:?}");
    assert!(calls.calls[0].contains("Decrypt"));
    let (opened, calls) = measure(
        fresh
            .accounts
            .sealer()
            .open(&second, "ACCOUNT#2", "secretKey"),
    )
    .await;
    assert_eq!(opened.unwrap(), "other");
    assert!(calls.calls.is_empty(), "same data key: {calls:?}");

    // Values sealed before envelope encryption (one KMS Encrypt each) still open.
    let legacy = sealer
        .seal_with_kms("legacy", "ACCOUNT#3", "accessToken")
        .await
        .unwrap();
    assert!(!legacy.starts_with("v2."));
    assert_eq!(
        sealer
            .open(&legacy, "ACCOUNT#3", "accessToken")
            .await
            .unwrap(),
        "legacy"
    );
    assert!(
        sealer
            .open(&legacy, "ACCOUNT#4", "accessToken")
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn merges_write_without_reading_and_keep_what_they_leave_out() {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Member {
        id: String,
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
        #[serde(default)]
        eligible: Option<bool>,
    }
    impl Record for Member {
        fn keys(&self) -> Keys {
            Keys::new(format!("MEMBER#{}", self.id), "MEMBER")
        }
    }
    let member = |status: &str, email: Option<&str>, eligible: Option<bool>| Member {
        id: "m1".into(),
        status: status.into(),
        email: email.map(str::to_owned),
        eligible,
    };
    let hub = hub("merge").await;
    let table = &hub.table;
    // Only existing items: nothing is created.
    assert_eq!(
        table
            .merge_with(&member("subscribed", None, Some(false)), &["status"], true)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        table
            .get::<Member>(&member("", None, None).keys())
            .await
            .unwrap(),
        None
    );
    let (created, trips) = shared::round_trips::measure(table.merge(&member(
        "subscribed",
        Some("a@x.com"),
        Some(true),
    )))
    .await;
    assert_eq!(
        created.unwrap(),
        member("subscribed", Some("a@x.com"), Some(true))
    );
    assert_eq!(trips.calls, ["DynamoDB.UpdateItem"], "one write, no read");
    // Left out (no email): kept. Written as null (eligible): cleared.
    assert_eq!(
        table
            .merge(&member("unsubscribed", None, None))
            .await
            .unwrap(),
        member("unsubscribed", Some("a@x.com"), None)
    );
    // `keep_stored`: the stored status stays; the rest is written.
    assert_eq!(
        table
            .merge_with(
                &member("subscribed", Some("b@x.com"), Some(true)),
                &["status"],
                true
            )
            .await
            .unwrap(),
        Some(member("unsubscribed", Some("b@x.com"), Some(true)))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_come_in_blocks_per_process_unique_across_processes() {
    let hub = hub("ids").await;
    let other = shared::store::Table::new(hub.table.client().clone(), hub.table.name());
    let (first, trips) = shared::round_trips::measure(hub.table.next_id("THING")).await;
    assert_eq!(trips.round_trips, 1, "a block is reserved");
    let (second, trips) = shared::round_trips::measure(hub.table.next_id("THING")).await;
    assert_eq!(trips.round_trips, 0, "then handed out from it");
    assert_eq!((first.unwrap(), second.unwrap()), (1, 2));
    // Another process reserves the next block.
    assert_eq!(other.next_id("THING").await.unwrap(), 21);
    let mut seen: Vec<u64> = vec![1, 2, 21];
    for _ in 0..25 {
        seen.push(hub.table.next_id("THING").await.unwrap());
        seen.push(other.next_id("THING").await.unwrap());
    }
    let count = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), count, "no id handed out twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_from_a_stale_read_reads_again() {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Counter {
        n: u32,
        revision: u64,
        updated_at: String,
    }
    impl Record for Counter {
        fn keys(&self) -> Keys {
            Keys::new("COUNTER#stale", "COUNTER")
        }
    }
    impl shared::store::Revisioned for Counter {
        fn revision(&self) -> u64 {
            self.revision
        }
        fn set_revision(&mut self, revision: u64) {
            self.revision = revision;
        }
        fn set_updated_at(&mut self, at: String) {
            self.updated_at = at;
        }
    }
    let hub = hub("update-from").await;
    let table = &hub.table;
    let start = Counter {
        n: 0,
        revision: 1,
        updated_at: String::new(),
    };
    table.put(&start).await.unwrap();
    let read = || async { Ok::<_, TxError>(table.get::<Counter>(&start.keys()).await?.unwrap()) };
    let add_one = |c: &mut Counter| -> Result<bool, TxError> {
        c.n += 1;
        Ok(true)
    };
    // From a current read: one round trip, the write.
    let (fresh, trips) =
        shared::round_trips::measure(hub.uow.update_from(Some(start.clone()), read, add_one)).await;
    assert_eq!((fresh.unwrap().n, trips.round_trips), (1, 1));
    // From a stale one (revision 1, stored 2): the condition fails, it reads and writes again.
    let again = hub
        .uow
        .update_from(Some(start.clone()), read, add_one)
        .await
        .unwrap();
    assert_eq!((again.n, again.revision), (2, 3));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purge_spares_a_partition_whose_record_lives_again() {
    let hub = hub("purge").await;
    let table = &hub.table;
    for n in 1..=30 {
        table.put(&note("purged", n)).await.unwrap();
    }
    // 30 items (two batches of deletes, sent together), none the living record's.
    assert_eq!(
        table
            .purge_partition_unless("NOTE#purged", "LIVING")
            .await
            .unwrap(),
        Some(30)
    );
    let left: Vec<Note> = table
        .query_all(&Query::partition("NOTE#purged"))
        .await
        .unwrap();
    assert!(left.is_empty());
    // A partition holding the record (created again meanwhile) is left alone.
    table.put(&note("living", 1)).await.unwrap();
    assert_eq!(
        table
            .purge_partition_unless("NOTE#living", "N#0001")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        table.get::<Note>(&note("living", 1).keys()).await.unwrap(),
        Some(note("living", 1))
    );
}
