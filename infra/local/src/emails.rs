//! Email locally: the functions send through SES as on AWS, the emulator plays SES (the
//! stand-in verifies the sender identity there), and `GET /_local/emails` shows what was
//! sent, newest last: `[{id, source, to, subject, body}]`.

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use shared::http::ApiError;

/// The sender the stand-in deploys with (`SenderEmail`).
pub const LOCAL_SENDER: &str = "hub@partner-hub.local";

/// Makes the sender an SES identity in the emulator (SES refuses unverified senders).
pub async fn verify_sender(sdk: &aws_config::SdkConfig, sender: &str) -> Result<(), String> {
    aws_sdk_sesv2::Client::new(sdk)
        .create_email_identity()
        .email_identity(sender)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws_sdk_sesv2::error::DisplayErrorContext(e).to_string())
}

/// What SES accepted, read from the emulator.
pub async fn sent(emulator: &str) -> Result<serde_json::Value, String> {
    let url = format!("{emulator}/_hub/ses/sent");
    let response = reqwest::get(&url).await.map_err(|e| e.to_string())?;
    response.json().await.map_err(|e| e.to_string())
}

pub fn router(emulator: String) -> Router {
    Router::new()
        .route("/_local/emails", get(list))
        .with_state(emulator)
}

async fn list(State(emulator): State<String>) -> Result<Json<serde_json::Value>, ApiError> {
    sent(&emulator)
        .await
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "emulator_error", e))
}
