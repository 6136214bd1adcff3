//! Property tests for every parser and newtype at the hub's edges: whatever the input,
//! nothing panics, and a value is either parsed or refused with a named field.
//!
//! Signed payloads, shop fields, the marketplace wire, EventBridge details and
//! envelopes, dates and analytics ranges. `PROPTEST_CASES` raises the case count (the
//! default, 256 per property, keeps the suite quick on two cores).

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use hub_tests::{PARTNER_A_KEY, PARTNER_A_PUB, sign_raw};
use jsonwebtoken::{Algorithm, Header};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use shared::{
    analytics::days_in_range,
    clock,
    domain::{
        CurrencyCode, Email, ExternalId, Locale, Platform, Price, ShopDomain, ShopName, TzOffset,
        free_text,
    },
    partners::PartnerKey,
    signed_payload::PayloadVerifier,
    subscriptions::TierCatalog,
};

/// Any JSON value, nested a few levels, with the strings and numbers that break parsers.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        arb_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(arb_key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Text: arbitrary Unicode, plausible values and edge cases (long, control, offsets).
fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9.-]{0,20}\\.[a-z]{2,6}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2}))?",
        "https?://[a-z]{1,10}\\.[a-z]{2,4}/[ -~]{0,20}",
        "[+-]?[0-9]{0,40}(\\.[0-9]{0,40})?",
        Just("9999-12-31T23:59:59-23:59".to_owned()),
        Just("0000-01-01T00:00:00+23:59".to_owned()),
        (0usize..3000).prop_map(|n| "x".repeat(n)),
        Just("\u{0}\u{7f}\u{202e}".to_owned()),
    ]
}

/// Object keys: the field names the parsers look for, and others.
fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "id",
            "tier",
            "contract_length",
            "website",
            "template",
            "company_name",
            "effective_date",
            "url",
            "name",
            "currencyCode",
            "contactEmail",
            "timezoneOffset",
            "locale",
            "platform",
            "event",
            "type",
            "timestamp",
            "user",
            "partnerId",
            "data",
            "product",
            "price",
            "priceType",
            "priceInterval",
            "firstName",
            "email",
            "dateOfBirth",
            "webIdentity",
            "region/state",
            "exp",
            "iat",
            "nbf",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z]{1,8}",
    ]
}

/// A JSON object with the given fields set to arbitrary values (some left out).
fn arb_object(fields: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::collection::vec(prop::option::of(arb_json()), fields.len()).prop_map(move |values| {
        let map: Map<String, Value> = fields
            .iter()
            .zip(values)
            .filter_map(|(k, v)| Some(((*k).to_owned(), v?)))
            .collect();
        Value::Object(map)
    })
}

proptest! {
    #[test]
    fn newtypes_parse_or_refuse_and_are_stable(text in arb_text()) {
        // Whatever parses, parses again to itself (the stored form is canonical).
        macro_rules! stable {
            ($parse:expr, $show:expr) => {
                if let Ok(v) = $parse(&text) {
                    let again = $parse(&$show(&v)).expect("a parsed value parses again");
                    prop_assert_eq!($show(&again), $show(&v));
                }
            };
        }
        stable!(ShopDomain::parse, |v: &ShopDomain| v.as_str().to_owned());
        stable!(ShopName::parse, |v: &ShopName| v.as_str().to_owned());
        stable!(CurrencyCode::parse, |v: &CurrencyCode| v.as_str().to_owned());
        stable!(Email::parse, |v: &Email| v.as_str().to_owned());
        stable!(TzOffset::parse, |v: &TzOffset| v.as_str().to_owned());
        stable!(Locale::parse, |v: &Locale| v.as_str().to_owned());
        stable!(ExternalId::parse, |v: &ExternalId| v.as_str().to_owned());
        let _ = Platform::parse(&text);
        if let Ok(price) = Price::parse(&text) {
            prop_assert!(price.as_str().len() <= 32);
        }
        if let Ok(Some(t)) = free_text(&text) {
            prop_assert!(t.chars().count() <= shared::domain::MAX_TEXT_CHARS);
        }
    }

    #[test]
    fn timestamps_parse_in_range_and_ranges_never_panic(a in arb_text(), b in arb_text()) {
        for at in [clock::parse_rfc3339(&a), clock::parse_iso8601(&a)].into_iter().flatten() {
            let sortable = clock::sortable(at);
            prop_assert_eq!(sortable.len(), 27, "{}", sortable);
            prop_assert!(clock::in_range(at).is_some());
        }
        if let (Some(start), Some(end)) = (clock::parse_iso8601(&a), clock::parse_iso8601(&b))
            && let Ok(days) = days_in_range(start, end)
        {
            prop_assert!(!days.is_empty() && days.len() <= 400);
        }
    }

    #[test]
    fn provisioning_claims_parse_or_name_a_field(
        claims in arb_object(&["url", "name", "currencyCode", "contactEmail", "timezoneOffset", "locale", "platform"])
    ) {
        if let Ok(claims) = serde_json::from_value::<partner_api::ProvisionClaims>(claims)
            && let Err(e) = claims.parse()
        {
            prop_assert!(e.field.is_some(), "{:?}", e);
            prop_assert!(e.status.is_client_error());
        }
    }

    #[test]
    fn signed_payload_claims_of_every_call_parse_or_name_a_field(
        confirm in arb_object(&["shop", "start", "end", "trialDays", "subscriptionIds", "dynamicPriceCapUSD", "fixedPriceCapUSD", "frixedPriceCapUSD", "fixedPriceAmountUSD"]),
        running in arb_object(&["shop", "running"]),
    ) {
        // Through the JSON text, as the hub reads signed claims (numbers stay exact).
        if let Ok(claims) = serde_json::from_str::<partner_api::ConfirmClaims>(&confirm.to_string()) {
            let parsed = claims.shop().and_then(|_| claims.confirmation("hash".into()));
            match parsed {
                Ok(c) => {
                    prop_assert!(!c.plan_ids.is_empty() && c.plan_ids.len() <= 100);
                    prop_assert!(clock::in_range(c.start).is_some() && clock::in_range(c.end).is_some());
                }
                Err(e) => prop_assert!(e.field.is_some() && e.status.is_client_error(), "{:?}", e),
            }
        }
        if let Ok(claims) = serde_json::from_str::<partner_api::RunningClaims>(&running.to_string())
            && let Err(e) = claims.shop().and_then(|_| claims.running())
        {
            prop_assert!(e.field.is_some(), "{:?}", e);
        }
    }

    #[test]
    fn plan_catalogs_parse_or_name_a_field(catalog in prop::collection::vec(arb_object(&["id", "name", "summary", "description", "allowedActions", "subscriptionTieredPricings", "subscriptionDynamicPricings", "type", "trialDays"]), 0..4)) {
        let _ = shared::plans::parse_catalog(&Value::Array(catalog).to_string());
    }

    #[test]
    fn marketplace_bodies_parse_or_are_refused(body in arb_json(), raw in any::<Vec<u8>>()) {
        let envelope = json!({"event": body, "user": body, "data": {"user": body, "product": body}});
        for bytes in [serde_json::to_vec(&body).unwrap(), serde_json::to_vec(&envelope).unwrap(), raw] {
            if let Err(e) = marketplace_webhooks::wire::parse_event(&bytes) {
                prop_assert!(e.status.is_client_error(), "{:?}", e);
            }
            let _ = serde_json::from_slice::<Value>(&bytes)
                .map(|v| marketplace_webhooks::wire::body_hash(&v));
        }
    }

    #[test]
    fn subscription_details_parse_or_name_a_field(
        create in arb_object(&["tier", "contract_length", "id", "website", "template", "company_name"]),
        cancel in arb_object(&["id", "effective_date"]),
        other in arb_json(),
    ) {
        let catalog = TierCatalog::default();
        for detail in [&create, &other] {
            if let Err(e) = subscription_events::wire::create_subscription(detail, &catalog) {
                prop_assert!(!e.field.is_empty());
            }
        }
        for detail in [&cancel, &other] {
            match subscription_events::wire::cancellation(detail) {
                Ok(c) => prop_assert!(clock::in_range(c.effective_date).is_some()),
                Err(e) => prop_assert!(!e.field.is_empty()),
            }
        }
    }

    #[test]
    fn eventbridge_envelopes_deserialize_or_are_refused(
        envelope in arb_object(&["id", "source", "detail-type", "detail", "account", "time", "region", "version", "resources"])
    ) {
        if let Ok(event) = serde_json::from_value::<EventBridgeEvent<Value>>(envelope) {
            let partner = shared::domain::PartnerId::random();
            if let Err(e) = subscription_events::wire::inbound(partner, &event) {
                prop_assert!(!e.field.is_empty());
            }
        }
    }

    #[test]
    fn any_string_as_a_signed_payload_is_refused(jwt in any::<String>(), parts in "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}") {
        let keys = [partner_key()];
        prop_assert!(verifier().verify(&jwt, &keys, shared::clock::now()).is_err());
        prop_assert!(verifier().verify(&parts, &keys, shared::clock::now()).is_err());
    }
}

proptest! {
    // Each case signs with RSA: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn signed_time_claims_never_overflow(
        exp in prop_oneof![any::<i64>(), Just(i64::MAX), Just(i64::MIN), Just(1_i64 << 62), Just(-(1_i64 << 62))],
        iat in prop::option::of(prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX)]),
        nbf in prop::option::of(any::<i64>()),
        offset in -7200_i64..7200,
    ) {
        let now = shared::clock::now();
        let t = now.unix_timestamp();
        let mut claims = json!({"url": "my-shop.com"});
        // Half the cases near now, so the accepting paths are exercised too.
        let near = |v: i64| if v % 2 == 0 { t.saturating_add(offset) } else { v };
        claims["exp"] = json!(near(exp));
        if let Some(iat) = iat { claims["iat"] = json!(near(iat)); }
        if let Some(nbf) = nbf { claims["nbf"] = json!(nbf); }
        let jwt = sign_raw(Header::new(Algorithm::RS512), PARTNER_A_KEY, &claims);
        if let Ok(accepted) = verifier().verify(&jwt, &[partner_key()], now) {
            let exp = accepted["exp"].as_i64().unwrap();
            // Accepted: not expired beyond the skew, and living at most the lifetime (from
            // `iat`, which must not follow `exp`, or else from now).
            prop_assert!(exp >= t - 60);
            match accepted.get("iat").and_then(Value::as_i64) {
                Some(iat) => prop_assert!(iat <= exp && exp - iat <= 3600 + 60),
                None => prop_assert!(exp - t <= 3600 + 60),
            }
        }
    }
}

fn verifier() -> PayloadVerifier {
    PayloadVerifier::new(Duration::from_secs(3600), Duration::from_secs(60))
}

fn partner_key() -> PartnerKey {
    PartnerKey {
        kid: "key-1".into(),
        public_key_pem: PARTNER_A_PUB.into(),
        added_at: String::new(),
    }
}
