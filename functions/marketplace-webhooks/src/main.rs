use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let hub = Arc::new(shared::Hub::from_env().await?);
    lambda_http::run(marketplace_webhooks::router(hub)).await
}
