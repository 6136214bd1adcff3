use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let hub = shared::Hub::from_env().await?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| {
            let hub = &hub;
            async move {
                partner_notifier::handle(hub, event.payload)
                    .await
                    .map(|_| ())
                    .map_err(lambda_runtime::Error::from)
            }
        },
    ))
    .await
}
