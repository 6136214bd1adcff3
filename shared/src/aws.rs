//! One `SdkConfig` per process, and the clients built from it once at init.
//!
//! The SDK's default HTTPS client reads every certificate in the system's certificate
//! directory (rustls-native-certs) when the first client is built, which was most of a
//! function's cold init, and brings aws-lc along. We build the client ourselves instead:
//! the same hyper 1.x stack, on rustls with `ring`, trusting Mozilla's root set compiled in
//! (`webpki-root-certs`). AWS endpoints chain to Amazon Root CA 1-4 or Starfield, all in it.

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
use base64::Engine as _;

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
/// SDK config), with the compiled-in trust store instead of the system's.
///
/// Build one per Tokio runtime: its connection pool belongs to the runtime it runs on.
pub fn http_client() -> SharedHttpClient {
    let trust_store = TrustStore::empty().with_pem_certificate(mozilla_roots_pem());
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

/// Mozilla's root certificates as one PEM bundle, the form the SDK's `TrustStore` takes.
fn mozilla_roots_pem() -> Vec<u8> {
    let base64 = base64::engine::general_purpose::STANDARD;
    let mut pem = Vec::with_capacity(256 * 1024);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in base64.encode(cert).as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
}

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

    #[test]
    fn the_trust_store_holds_every_mozilla_root() {
        let pem = String::from_utf8(mozilla_roots_pem()).unwrap();
        let count = pem.matches("-----BEGIN CERTIFICATE-----").count();
        assert_eq!(count, webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(count > 100, "{count} roots");
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
