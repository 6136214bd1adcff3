//! Tracing: JSON lines on Lambda (CloudWatch parses them), readable lines locally.
//!
//! The filter is a [`Targets`] parsed from `RUST_LOG` (`target=level,...` and/or a bare
//! default level), not an `EnvFilter`: `EnvFilter` brings `regex` into every function and
//! compiles its directives at init, which cost binary size and cold-start time. Span
//! directives and field values (`target[span{field=value}]=level`) are therefore not
//! supported; a `RUST_LOG` that does not parse falls back to `info`, with a warning.

use std::str::FromStr;

use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Installs the global subscriber once; later calls are no-ops (tests call it freely).
pub fn init() {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (filter, invalid) = match filter_from(rust_log.as_deref()) {
        Ok(filter) => (filter, None),
        Err(error) => (default_filter(), Some(error)),
    };
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let result = subscriber(filter, on_lambda).try_init();
    if let (Ok(()), Some(error)) = (result, invalid) {
        tracing::warn!(%error, "RUST_LOG is not a valid target filter; logging at info");
    }
}

/// JSON lines on Lambda, compact lines elsewhere, filtered by `filter` alone.
fn subscriber(filter: Targets, on_lambda: bool) -> Box<dyn Subscriber + Send + Sync> {
    // `fmt()` caps events at INFO unless told otherwise; the `Targets` decides instead.
    let fmt = fmt().with_max_level(LevelFilter::TRACE).with_target(false);
    if on_lambda {
        Box::new(
            fmt.json()
                // The request or invocation span: its request id on every line.
                .with_current_span(true)
                .with_span_list(false)
                .with_ansi(false)
                .without_time() // CloudWatch stamps every line already
                .finish()
                .with(filter),
        )
    } else {
        Box::new(fmt.compact().finish().with(filter))
    }
}

/// `info` for everything.
fn default_filter() -> Targets {
    Targets::new().with_default(LevelFilter::INFO)
}

/// The filter `RUST_LOG` asks for: `info` when it is unset or blank (an empty `Targets`
/// would disable every event).
fn filter_from(rust_log: Option<&str>) -> Result<Targets, String> {
    match rust_log.map(str::trim) {
        None | Some("") => Ok(default_filter()),
        Some(directives) => Targets::from_str(directives).map_err(|error| error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn defaults_to_info() {
        for unset in [None, Some(""), Some("  ")] {
            let filter = filter_from(unset).unwrap();
            assert!(
                filter.would_enable("shared::store", &Level::INFO),
                "{unset:?}"
            );
            assert!(
                !filter.would_enable("shared::store", &Level::DEBUG),
                "{unset:?}"
            );
        }
    }

    #[test]
    fn parses_a_bare_level_and_per_target_levels() {
        let filter = filter_from(Some("debug")).unwrap();
        assert!(filter.would_enable("anything", &Level::DEBUG));
        assert!(!filter.would_enable("anything", &Level::TRACE));

        let filter = filter_from(Some("warn,shared=trace,aws_smithy_runtime=error")).unwrap();
        assert!(filter.would_enable("shared::events", &Level::TRACE));
        assert!(!filter.would_enable("aws_smithy_runtime::client", &Level::WARN));
        assert!(filter.would_enable("lambda_runtime", &Level::WARN));
        assert!(!filter.would_enable("lambda_runtime", &Level::INFO));
    }

    #[test]
    fn the_subscriber_lets_the_filter_decide() {
        for on_lambda in [true, false] {
            let debug = subscriber(filter_from(Some("warn,shared=debug")).unwrap(), on_lambda);
            tracing::subscriber::with_default(debug, || {
                assert!(tracing::enabled!(target: "shared::store", Level::DEBUG));
                assert!(!tracing::enabled!(target: "shared::store", Level::TRACE));
                assert!(!tracing::enabled!(target: "hyper", Level::INFO));
            });
            let default = subscriber(default_filter(), on_lambda);
            tracing::subscriber::with_default(default, || {
                assert!(tracing::enabled!(target: "shared::store", Level::INFO));
                assert!(!tracing::enabled!(target: "shared::store", Level::DEBUG));
            });
        }
    }

    #[test]
    fn an_invalid_filter_is_an_error_so_init_falls_back_to_info() {
        assert!(filter_from(Some("shared=loudly")).is_err());
        assert!(filter_from(Some("shared=debug=trace")).is_err());
    }
}
