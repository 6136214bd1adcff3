//! The functions the stand-in can run in-process, by the template's `Binary` name: the
//! same routers and handlers the Lambda binaries run. This maps names to entry points;
//! which routes, rules and schedules reach them comes only from the template.

use std::{future::Future, pin::Pin, sync::Arc};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use shared::Hub;

pub type Invocation = Pin<Box<dyn Future<Output = Result<serde_json::Value, String>> + Send>>;

/// An event-driven entry point: takes the raw event a Lambda would receive.
pub type Invoke = Arc<dyn Fn(serde_json::Value) -> Invocation + Send + Sync>;

#[derive(Clone)]
pub struct LocalFunction {
    /// The axum router, for functions behind HTTP API routes.
    pub router: Option<axum::Router>,
    /// The event handler, for functions behind rules and schedules.
    pub invoke: Option<Invoke>,
}

/// Builds the function the template names by binary, with its own `Hub` (built from
/// the environment the template gives that function).
pub fn build(binary: &str, hub: Arc<Hub>) -> Option<LocalFunction> {
    match binary {
        "partner-api" => Some(LocalFunction {
            router: Some(partner_api::router(hub)),
            invoke: None,
        }),
        "account-timeline" => Some(LocalFunction {
            router: None,
            invoke: Some(Arc::new(move |event| {
                let hub = hub.clone();
                Box::pin(async move {
                    let event: EventBridgeEvent<serde_json::Value> = serde_json::from_value(event)
                        .map_err(|e| format!("not an EventBridge event: {e}"))?;
                    account_timeline::handle(&hub, event)
                        .await
                        .map(|outcome| serde_json::json!(format!("{outcome:?}")))
                        .map_err(|e| e.to_string())
                })
            })),
        }),
        "outbox-sweep" => Some(LocalFunction {
            router: None,
            invoke: Some(Arc::new(move |event| {
                let hub = hub.clone();
                Box::pin(async move {
                    outbox_sweep::handle(&hub, event)
                        .await
                        .map(|report| serde_json::to_value(report).unwrap_or_default())
                        .map_err(|e| e.to_string())
                })
            })),
        }),
        "marketplace-webhooks" => Some(LocalFunction {
            router: Some(marketplace_webhooks::router(hub)),
            invoke: None,
        }),
        "marketplace-suspensions" => Some(LocalFunction {
            router: None,
            invoke: Some(Arc::new(move |event| {
                let hub = hub.clone();
                Box::pin(async move {
                    marketplace_suspensions::handle(&hub, event)
                        .await
                        .map(|report| serde_json::to_value(report).unwrap_or_default())
                        .map_err(|e| e.to_string())
                })
            })),
        }),
        "subscription-events" => Some(event_function(hub, |hub, event| {
            Box::pin(async move {
                subscription_events::handle(&hub, event)
                    .await
                    .map(|handled| serde_json::json!(format!("{handled:?}")))
                    .map_err(|e| e.to_string())
            })
        })),
        "partner-notifier" => Some(event_function(hub, |hub, event| {
            Box::pin(async move {
                partner_notifier::handle(&hub, event)
                    .await
                    .map(|notified| serde_json::json!(format!("{notified:?}")))
                    .map_err(|e| e.to_string())
            })
        })),
        "account-cleanup" => Some(LocalFunction {
            router: None,
            invoke: Some(Arc::new(move |event| {
                let hub = hub.clone();
                Box::pin(async move {
                    account_cleanup::handle(&hub, event)
                        .await
                        .map(|report| serde_json::to_value(report).unwrap_or_default())
                        .map_err(|e| e.to_string())
                })
            })),
        }),
        "analytics-api" => Some(LocalFunction {
            router: Some(analytics_api::router(hub)),
            invoke: None,
        }),
        _ => None,
    }
}

/// An EventBridge-triggered function: parses the envelope as Lambda would.
fn event_function<F>(hub: Arc<Hub>, run: F) -> LocalFunction
where
    F: Fn(Arc<Hub>, EventBridgeEvent<serde_json::Value>) -> Invocation + Send + Sync + 'static,
{
    let run = Arc::new(run);
    LocalFunction {
        router: None,
        invoke: Some(Arc::new(move |event| {
            let (hub, run) = (hub.clone(), run.clone());
            Box::pin(async move {
                let event: EventBridgeEvent<serde_json::Value> = serde_json::from_value(event)
                    .map_err(|e| format!("not an EventBridge event: {e}"))?;
                run(hub, event).await
            })
        })),
    }
}
