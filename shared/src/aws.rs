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

use aws_config::{BehaviorVersion, SdkConfig};
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

/// Loads the shared AWS configuration from the environment (region, credentials,
/// `AWS_ENDPOINT_URL` for the local emulator), with [`http_client`].
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .load()
        .await
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

/// The AWS clients a function uses; they share the config's HTTP client.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub kms: aws_sdk_kms::Client,
}

impl AwsClients {
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            eventbridge: aws_sdk_eventbridge::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
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
        let clients = AwsClients::new(&sdk);
        assert!(clients.dynamodb.config().http_client().is_some());
    }
}
