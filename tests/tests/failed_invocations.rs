//! Nothing lost silently: an event whose function keeps failing ends, after Lambda's
//! retries, at the function's on-failure destination (the dead-letter queue), where
//! `hub-admin failed-invocations` shows it with its function and error, and `hub-admin
//! reinvoke` runs the function again with the original event through the Lambda Invoke
//! API (the stand-in serves it, as `.hub/local.env` says).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use hub_admin::failed::{FailedInvocations, Kind};
use hub_local::{
    failures::OnFailure,
    functions::Invoke,
    rules::{MAX_RECEIVES, RulePoller},
};
use hub_tests::{TestHub, sample};
use shared::domain::AccountId;

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_handlers_event_ends_where_hub_admin_shows_it_and_runs_again() {
    let hub = TestHub::start("failed-invocations").await;
    let dlq = hub
        .stand_in
        .dead_letter_queue_url()
        .expect("the template's dead-letter queue")
        .to_owned();
    let sqs = aws_sdk_sqs::Client::new(&hub.stand_in.sdk);

    // account-timeline's rule, its function failing every time (a storage outage, say).
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let failing: Invoke = Arc::new(move |_event| {
        counter.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Err("DynamoDB request failed: service unavailable".to_owned()) })
    });
    let queue = sqs
        .create_queue()
        .queue_name(format!("failing-{}", shared::secrets::random_hex16()))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let poller = RulePoller {
        sqs: sqs.clone(),
        queue_url: queue.clone(),
        label: "account-timeline (failing)".into(),
        invoke: failing,
        on_failure: OnFailure {
            // Lambda sends the record with the function's role.
            sqs: aws_sdk_sqs::Client::new(&hub_local::iam::signed_as(
                &hub.stand_in.sdk,
                "AccountTimelineFunction",
                &hub.stand_in.aws_endpoint,
            )),
            queue_url: Some(dlq.clone()),
            function: "account-timeline".into(),
        },
    };
    let mut event = sample("hub/account.provisioned.json");
    let account = AccountId::random();
    event["detail"]["accountId"] = account.to_string().into();
    sqs.send_message()
        .queue_url(&queue)
        .message_body(event.to_string())
        .send()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while attempts.load(Ordering::SeqCst) < MAX_RECEIVES as usize {
        assert!(tokio::time::Instant::now() < deadline, "not retried");
        poller.poll_once().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Retried as Lambda retries (3 attempts), then not again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    poller.poll_once().await.unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), MAX_RECEIVES as usize);

    // hub-admin failed-invocations shows it.
    // As an operator under the template's OperatorPolicy (the Invoke API included).
    let operator = hub.stand_in.operator_sdk();
    let failed = FailedInvocations::from_clients(
        aws_sdk_sqs::Client::new(&operator),
        aws_sdk_lambda::Client::new(&operator),
        dlq.clone(),
    );
    let listed = failed.list().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let entry = &listed[0];
    assert_eq!(entry.kind, Kind::InvocationFailed);
    assert!(
        entry
            .function
            .as_deref()
            .unwrap()
            .contains(":function:account-timeline"),
        "{entry:?}"
    );
    assert!(
        entry
            .error
            .as_deref()
            .unwrap()
            .contains("service unavailable")
    );
    assert_eq!(entry.payload, event);
    // Listing leaves it there.
    assert_eq!(failed.list().await.unwrap().len(), 1);

    // hub-admin reinvoke runs the real function with the original event, once.
    let reinvoked = failed.reinvoke(&entry.id).await.unwrap();
    assert_eq!(reinvoked.id, entry.id);
    let entries = hub_tests::eventually(Duration::from_secs(15), || async {
        let entries = hub.stand_in.hub.timeline.list(account).await.unwrap();
        (!entries.is_empty()).then_some(entries)
    })
    .await
    .expect("the timeline got the event");
    assert_eq!(entries.len(), 1);
    assert!(failed.list().await.unwrap().is_empty());
    assert!(
        failed.reinvoke(&entry.id).await.is_err(),
        "gone once reinvoked"
    );
    // The operator's calls and the function's destination were authorized as on AWS.
    hub.assert_nothing_denied();
    let decisions = hub.stand_in.authorizations.decisions();
    for (principal, action) in [
        ("AccountTimelineFunction", "sqs:SendMessage"),
        ("OperatorPolicy", "sqs:ReceiveMessage"),
        ("OperatorPolicy", "sqs:DeleteMessage"),
        ("OperatorPolicy", "lambda:InvokeFunction"),
    ] {
        assert!(
            decisions
                .iter()
                .any(|(d, _)| d.principal == principal && d.action == action),
            "{principal} {action} was not authorized: {decisions:#?}"
        );
    }
    hub.stop().await;
}
