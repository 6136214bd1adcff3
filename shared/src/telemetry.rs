//! Tracing: JSON lines on Lambda (CloudWatch parses them), readable lines locally.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber once; later calls are no-ops (tests call it freely).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let result = if on_lambda {
        fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(false)
            .with_ansi(false)
            .without_time() // CloudWatch stamps every line already
            .with_target(false)
            .try_init()
    } else {
        fmt()
            .compact()
            .with_env_filter(filter)
            .with_target(false)
            .try_init()
    };
    let _ = result;
}
