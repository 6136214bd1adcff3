use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = shared::Config::from_env()?;
    let sdk = shared::aws::load_sdk_config().await;
    let notifier = partner_notifier::Notifier {
        eventbridge: aws_sdk_eventbridge::Client::new(&sdk),
    };
    let hub = shared::Hub::new(config, &sdk);
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| {
            let (hub, notifier) = (&hub, &notifier);
            async move {
                partner_notifier::handle(hub, notifier, event.payload)
                    .await
                    .map(|_| ())
                    .map_err(lambda_runtime::Error::from)
            }
        },
    ))
    .await
}
