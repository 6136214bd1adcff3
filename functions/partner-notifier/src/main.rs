#[tokio::main]
async fn main() -> Result<(), shared::runtime::Error> {
    shared::runtime::serve_events(partner_notifier::function()).await
}
