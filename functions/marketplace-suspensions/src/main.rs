#[tokio::main]
async fn main() -> Result<(), shared::runtime::Error> {
    shared::runtime::serve_events(marketplace_suspensions::function()).await
}
