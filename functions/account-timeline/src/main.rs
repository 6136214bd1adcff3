#[tokio::main]
async fn main() -> Result<(), shared::runtime::Error> {
    shared::runtime::serve_events(account_timeline::function()).await
}
