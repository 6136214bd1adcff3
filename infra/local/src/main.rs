//! `cargo run -p hub-local [-- --root <dir>]`: the whole hub on 127.0.0.1 (port `HUB_PORT`,
//! default 3000), for the checkout around the current directory (or `--root`).

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    shared::telemetry::init();
    // `--root <dir>`: serve that checkout; by default the one around the current directory.
    let args: Vec<String> = std::env::args().collect();
    let options = match args.iter().position(|a| a == "--root") {
        Some(i) => {
            let root = args.get(i + 1).ok_or("--root needs a directory")?;
            hub_local::Options::from_env_at(std::path::PathBuf::from(root).canonicalize()?)?
        }
        None => hub_local::Options::from_env()?,
    };
    let demo_file = options.demo_file.clone();
    let emulator = hub_local::start_emulator(false).await?;
    let stand_in = hub_local::start(options, emulator).await?;
    println!("Partner Hub is running locally.");
    println!("  emulator (moto): {}", stand_in.emulator_endpoint);
    println!("  table: {}", stand_in.hub.config.table_name);
    println!("  event bus: {}", stand_in.hub.config.event_bus_name);
    for line in &stand_in.served {
        println!("  {line}");
    }
    if let Some(file) = demo_file {
        println!(
            "  demo partner: {} (partner_token, analytics_key, private_key_pem, base_url)",
            file.display()
        );
        // Where the keys are, never the keys: terminals get recorded and shared.
        println!(
            "  demo marketplace: {} (POST {} with Authorization: Bearer <its token>)",
            file.with_file_name("demo-marketplace.json").display(),
            stand_in.demo_marketplace.callback_url,
        );
        println!(
            "  demo loyalty site {}: {} (access_token, webhook_secret); SMS gateway played at /_local/sms-gateway",
            stand_in.demo_site.site_id,
            file.with_file_name("demo-site.json").display(),
        );
        let env_file = file.with_file_name("local.env");
        std::fs::write(&env_file, stand_in.env_lines())?;
        println!(
            "  AWS settings for hub-admin and the AWS CLI: {}",
            env_file.display()
        );
    }
    println!(
        "  demo partner's events: source {} on the ingress bus ({}); answers recorded at {}/_local/partner-buses/demo/events",
        hub_local::DEMO_EVENT_SOURCE,
        stand_in
            .hub
            .config
            .ingress_bus_name
            .as_deref()
            .unwrap_or("none"),
        stand_in.base_url
    );
    println!("Ctrl-C stops everything.");
    tokio::signal::ctrl_c().await?;
    println!("stopping...");
    stand_in.stop().await;
    Ok(())
}
