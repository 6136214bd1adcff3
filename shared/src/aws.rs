//! One `SdkConfig` per process, and the clients built from it once at init.
//!
//! The SDK's default HTTPS client reads every certificate in the system's certificate
//! directory (rustls-native-certs) when the first client is built, which was most of a
//! function's cold init, and brings aws-lc along. We build the client ourselves instead:
//! the same hyper 1.x stack, on rustls with `ring`, trusting only the roots AWS endpoints
//! chain to (Amazon Root CA 1-4 and Starfield Services Root CA - G2), picked out of
//! Mozilla's set (`webpki-root-certs`) at build time and compiled in (see `build.rs` and
//! `trust_roots.rs`): parsing all ~150 Mozilla roots at init was a measurable part of a
//! cold start, and they were ~200 KB of every binary. The client therefore cannot reach
//! endpoints that chain elsewhere, which the functions never call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::identity::IdentityCache;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::SharedCredentialsProvider;
use aws_smithy_async::rt::sleep::{SharedAsyncSleep, TokioSleep};
use aws_smithy_async::time::SharedTimeSource;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, Connector};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

/// Loads the shared AWS configuration from the environment (region, credentials,
/// `AWS_ENDPOINT_URL` for the local emulator), with [`http_client`].
///
/// On Lambda the environment holds everything (see [`lambda_sdk_config`]), so the config
/// is built from it directly: the default loader's provider chains, profile-file reads and
/// per-setting lookups were ~0.45 ms of every cold init. Anywhere else, or on Lambda with
/// any other `AWS_*` setting, the default loader decides.
pub async fn load_sdk_config() -> SdkConfig {
    let http_client = http_client();
    if let Some(sdk) = aws_env().and_then(|env| lambda_sdk_config(&env, http_client.clone())) {
        return sdk;
    }
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .load()
        .await
}

/// The process's `AWS_*` variables, or `None` if one of them is not Unicode (the default
/// loader then decides).
fn aws_env() -> Option<Vec<(String, String)>> {
    std::env::vars_os()
        .filter(|(name, _)| name.as_encoded_bytes().starts_with(b"AWS_"))
        .map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

/// `AWS_*` variables the Lambda config handles or the SDK ignores; any other one (a
/// profile, retry or timeout setting, FIPS, a service-specific endpoint, container
/// credentials, ...) is left to the default loader.
fn lambda_handles(name: &str) -> bool {
    name.starts_with("AWS_LAMBDA_")
        || name.starts_with("AWS_XRAY_")
        || matches!(
            name,
            "AWS_REGION"
                | "AWS_DEFAULT_REGION"
                | "AWS_ACCESS_KEY_ID"
                | "AWS_SECRET_ACCESS_KEY"
                | "AWS_SESSION_TOKEN"
                | "AWS_ACCOUNT_ID"
                | "AWS_ENDPOINT_URL"
                // Unused by the SDK: Lambda sets it beside AWS_ACCESS_KEY_ID.
                | "AWS_ACCESS_KEY"
                | "AWS_EXECUTION_ENV"
                // Unused with a region and credentials from the environment.
                | "AWS_EC2_METADATA_DISABLED"
                // Unused by the Rust SDK; our client trusts the compiled-in roots anyway.
                | "AWS_CA_BUNDLE"
        )
}

/// What `aws_config::defaults(BehaviorVersion::latest()).load()` resolves on Lambda, built
/// directly from the `AWS_*` variables in `env`: region from `AWS_REGION` (or
/// `AWS_DEFAULT_REGION`), credentials from the environment, `AWS_ENDPOINT_URL` if set, and
/// the loader's defaults otherwise (standard retries, 3.1 s connect timeout, a lazy
/// identity cache shared by the clients, Tokio sleep, system time). `None` (use the
/// default loader) off Lambda, without a region or keys, or when `env` has a setting
/// [`lambda_handles`] does not cover. Profile files are not read: Lambda has none.
fn lambda_sdk_config(env: &[(String, String)], http_client: SharedHttpClient) -> Option<SdkConfig> {
    let get = |key: &str| {
        env.iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.trim().is_empty())
    };
    get("AWS_LAMBDA_FUNCTION_NAME")?;
    if !env.iter().all(|(name, _)| lambda_handles(name)) {
        return None;
    }
    let region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION"))?;
    get("AWS_ACCESS_KEY_ID")?;
    get("AWS_SECRET_ACCESS_KEY")?;
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .identity_cache(IdentityCache::lazy().build())
        .http_client(http_client)
        .sleep_impl(SharedAsyncSleep::new(TokioSleep::new()))
        .time_source(SharedTimeSource::default())
        .retry_config(RetryConfig::standard())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(3100))
                .build(),
        );
    builder.set_endpoint_url(get("AWS_ENDPOINT_URL").map(str::to_owned));
    Some(builder.build())
}

/// The HTTPS client for `aws_config::ConfigLoader::http_client`: what the SDK's default
/// client does (proxy settings from the environment, connect and read timeouts from the
/// SDK config), with the compiled-in [`AWS_ROOTS_PEM`] instead of the system's trust store.
///
/// Build one per Tokio runtime: its connection pool belongs to the runtime it runs on.
pub fn http_client() -> SharedHttpClient {
    let trust_store = TrustStore::empty().with_pem_certificate(AWS_ROOTS_PEM);
    let tls = TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .expect("a TLS context with a trust store is valid");
    let inner = Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = Connector::builder()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .tls_context(tls.clone())
            .proxy_config(ProxyConfig::from_env());
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.build()
    });
    SharedHttpClient::new(ValidateOnce {
        inner,
        validated: AtomicBool::new(false),
    })
}

/// The SDK validates the HTTP client of every client it builds by building (and dropping)
/// a connector, which parses the whole trust store. Our clients share one HTTP client, so
/// the first validation, still at init, stands for all of them.
#[derive(Debug)]
struct ValidateOnce {
    inner: SharedHttpClient,
    validated: AtomicBool,
}

impl HttpClient for ValidateOnce {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.inner.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        if !self.validated.load(Ordering::Acquire) {
            self.inner.validate_base_client_config(components, cfg)?;
            self.validated.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

/// The roots AWS endpoints chain to, as one PEM bundle (the form the SDK's `TrustStore`
/// takes), written by `build.rs`.
pub const AWS_ROOTS_PEM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/aws-roots.pem"));

/// `sdk` with an operation timeout and a per-attempt timeout; its connect timeout kept.
pub fn with_operation_timeout(sdk: &SdkConfig, timeout: Duration) -> SdkConfig {
    let connect = sdk
        .timeout_config()
        .and_then(TimeoutConfig::connect_timeout)
        .unwrap_or(Duration::from_millis(3100));
    sdk.to_builder()
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(connect.min(timeout))
                .operation_timeout(timeout)
                .operation_attempt_timeout(timeout.mul_f64(0.4))
                .build(),
        )
        .build()
}

/// The AWS clients a function uses; they share the config's HTTP client.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub kms: aws_sdk_kms::Client,
}

impl AwsClients {
    /// The clients, each operation bounded by `timeout` (all attempts together; one
    /// attempt gets 40% of it, so a stalled connection is retried once or twice in time).
    /// Each carries the round-trip counter (`round_trips`), idle outside a measurement.
    pub fn new(sdk: &SdkConfig, timeout: Duration) -> Self {
        use crate::round_trips::CallCounter;
        let sdk = &with_operation_timeout(sdk, timeout);
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(sdk)
                    .interceptor(CallCounter)
                    .build(),
            ),
            eventbridge: aws_sdk_eventbridge::Client::from_conf(
                aws_sdk_eventbridge::config::Builder::from(sdk)
                    .interceptor(CallCounter)
                    .build(),
            ),
            kms: aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(sdk)
                    .interceptor(CallCounter)
                    .build(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::trust_roots::{is_aws_root, pem_bundle};
    use sha2::{Digest, Sha256};

    /// SHA-256 of Amazon Root CA 1's DER, as Amazon Trust Services publishes it.
    const AMAZON_ROOT_CA_1_SHA256: &str =
        "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e";

    fn aws_roots() -> Vec<&'static [u8]> {
        webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|cert| &cert[..])
            .filter(|der| is_aws_root(der))
            .collect()
    }

    #[test]
    fn the_filter_picks_the_amazon_trust_services_roots() {
        let roots = aws_roots();
        assert!((5..=6).contains(&roots.len()), "{} roots", roots.len());
        let fingerprints: Vec<String> = roots
            .iter()
            .map(|der| hex::encode(Sha256::digest(der)))
            .collect();
        assert!(
            fingerprints.iter().any(|f| f == AMAZON_ROOT_CA_1_SHA256),
            "{fingerprints:?}"
        );
        for name in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            let found = roots
                .iter()
                .any(|der| der.windows(name.len()).any(|w| w == name.as_bytes()));
            assert!(found, "{name} missing");
        }
        // GoDaddy's Starfield root, which AWS endpoints do not chain to, is left out.
        let godaddy = b"Starfield Root Certificate Authority - G2";
        assert!(
            !roots
                .iter()
                .any(|der| der.windows(godaddy.len()).any(|w| w == godaddy))
        );
    }

    #[test]
    fn the_compiled_in_bundle_is_the_filtered_set() {
        assert_eq!(AWS_ROOTS_PEM, pem_bundle(aws_roots()).as_slice());
        let pem = std::str::from_utf8(AWS_ROOTS_PEM).unwrap();
        assert_eq!(
            pem.matches("-----BEGIN CERTIFICATE-----").count(),
            aws_roots().len()
        );
    }

    fn lambda_env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_FUNCTION_NAME", "partner-api"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDLAMBDA"),
            ("AWS_SECRET_ACCESS_KEY", "lambda-secret"),
            ("AWS_SESSION_TOKEN", "lambda-token"),
            ("AWS_XRAY_DAEMON_ADDRESS", "169.254.79.129:2000"),
        ]
        .iter()
        .chain(extra)
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
    }

    #[tokio::test]
    async fn the_lambda_config_comes_from_the_environment() {
        let sdk = lambda_sdk_config(&lambda_env(&[]), http_client()).expect("a Lambda config");
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert!(sdk.credentials_provider().is_some());
        assert!(sdk.identity_cache().is_some());
        assert!(sdk.http_client().is_some());
        assert!(sdk.sleep_impl().is_some());
        assert!(sdk.time_source().is_some());
        assert_eq!(sdk.behavior_version(), Some(BehaviorVersion::latest()));
        assert_eq!(sdk.retry_config(), Some(&RetryConfig::standard()));
        assert_eq!(
            sdk.timeout_config().and_then(|t| t.connect_timeout()),
            Some(Duration::from_millis(3100))
        );
        assert_eq!(sdk.endpoint_url(), None);
        // The clients build from it.
        let clients = AwsClients::new(&sdk, Duration::from_secs(5));
        let timeouts = clients.kms.config().timeout_config().unwrap();
        assert_eq!(timeouts.operation_timeout(), Some(Duration::from_secs(5)));
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            timeouts.connect_timeout(),
            Some(Duration::from_millis(3100))
        );
        assert_eq!(
            clients.kms.config().region().map(|r| r.as_ref()),
            Some("eu-west-1")
        );

        let local = [("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")];
        let sdk = lambda_sdk_config(&lambda_env(&local), http_client()).unwrap();
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:4566"));

        let only_default_region: Vec<_> = lambda_env(&[])
            .into_iter()
            .filter(|(name, _)| name != "AWS_REGION")
            .collect();
        let sdk = lambda_sdk_config(&only_default_region, http_client()).unwrap();
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
    }

    #[test]
    fn the_default_loader_decides_off_lambda_and_for_other_settings() {
        let without = |dropped: &str| -> Vec<(String, String)> {
            lambda_env(&[])
                .into_iter()
                .filter(|(name, _)| name != dropped)
                .collect()
        };
        let lambda = |env: &[(String, String)]| lambda_sdk_config(env, http_client()).is_some();
        assert!(!lambda(&without("AWS_LAMBDA_FUNCTION_NAME")));
        assert!(!lambda(&without("AWS_ACCESS_KEY_ID")));
        assert!(!lambda(&without("AWS_SECRET_ACCESS_KEY")));
        let no_region: Vec<_> = without("AWS_REGION")
            .into_iter()
            .filter(|(name, _)| name != "AWS_DEFAULT_REGION")
            .collect();
        assert!(!lambda(&no_region));
        for setting in [
            ("AWS_PROFILE", "admin"),
            ("AWS_CONFIG_FILE", "/var/task/config"),
            ("AWS_MAX_ATTEMPTS", "5"),
            ("AWS_RETRY_MODE", "adaptive"),
            ("AWS_USE_FIPS_ENDPOINT", "true"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://localhost:8000"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://localhost/creds",
            ),
            ("AWS_SDK_UA_APP_ID", "hub"),
        ] {
            assert!(!lambda(&lambda_env(&[setting])), "{setting:?}");
        }
    }

    #[tokio::test]
    async fn clients_build_with_the_compiled_in_trust_store() {
        // Building a client validates its HTTP client, which builds a connector and so
        // parses every PEM certificate (it panics on one it can't parse).
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .region(aws_config::Region::new("us-east-1"))
            .no_credentials()
            .load()
            .await;
        let clients = AwsClients::new(&sdk, Duration::from_secs(5));
        assert!(clients.dynamodb.config().http_client().is_some());
    }
}
