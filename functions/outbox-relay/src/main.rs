#[tokio::main]
async fn main() -> Result<(), shared::runtime::Error> {
    shared::runtime::serve_events(outbox_relay::function()).await
}
