//! One `SdkConfig` per process, and the clients built from it once at init.

use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the shared AWS configuration from the environment (region, credentials,
/// `AWS_ENDPOINT_URL` for the local emulator).
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
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
