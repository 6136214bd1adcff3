//! The SMS gateway's API as the loyalty contract documents it (Attentive): subscribe,
//! eligibility, unsubscribe and messages, through the one outbound client. Requests are
//! the contract's samples field for field; answers are passed on as the gateway wrote
//! them. The base URL is a deployment parameter (`SMS_GATEWAY_URL`), never a site's.

use serde_json::{Value, json};

use crate::outbound::{OutboundClient, OutboundError, OutboundRequest, OutboundResponse};

/// A member as the gateway's `user` object carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayUser {
    /// National digits for the site's country, as the samples send (`7707651750`).
    pub phone: String,
    pub email: Option<String>,
}

impl GatewayUser {
    fn to_json(&self) -> Value {
        let mut user = json!({ "phone": self.phone });
        if let Some(email) = &self.email {
            user["email"] = json!(email);
        }
        user
    }
}

#[derive(Clone, Debug)]
pub struct Gateway {
    client: OutboundClient,
    base: String,
}

/// The subscription kinds the unsubscribe call names (the contract's order).
const BOTH_CHANNELS: [(&str, &str); 2] = [("MARKETING", "EMAIL"), ("MARKETING", "TEXT")];

impl Gateway {
    pub fn new(client: OutboundClient, base_url: &str) -> Self {
        Self {
            client,
            base: base_url.trim_end_matches('/').to_owned(),
        }
    }

    async fn call(
        &self,
        mut request: OutboundRequest,
        bearer: &str,
    ) -> Result<Value, OutboundError> {
        request
            .secret_headers
            .push(("authorization".into(), format!("Bearer {bearer}")));
        let response: OutboundResponse = self.client.send(request).await?;
        Ok(serde_json::from_slice(&response.body).unwrap_or(Value::Null))
    }

    /// `POST /v1/subscriptions` with the app's token.
    pub async fn subscribe(
        &self,
        app_token: &str,
        user: &GatewayUser,
        sign_up_source_id: &str,
    ) -> Result<Value, OutboundError> {
        let body = json!({ "user": user.to_json(), "signUpSourceId": sign_up_source_id });
        self.call(
            OutboundRequest::post_json(format!("{}/v1/subscriptions", self.base), &body),
            app_token,
        )
        .await
    }

    /// `GET /v1/subscriptions?phone=&email=` with the app's token.
    pub async fn eligibility(
        &self,
        app_token: &str,
        user: &GatewayUser,
    ) -> Result<Value, OutboundError> {
        let mut url = url::Url::parse(&format!("{}/v1/subscriptions", self.base))
            .map_err(|e| OutboundError::Refused(format!("SMS_GATEWAY_URL: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("phone", &user.phone);
            if let Some(email) = &user.email {
                query.append_pair("email", email);
            }
        }
        let request = OutboundRequest {
            method: "GET".into(),
            url: url.to_string(),
            headers: vec![("content-type".into(), "application/json".into())],
            secret_headers: Vec::new(),
            body: Vec::new(),
        };
        self.call(request, app_token).await
    }

    /// `POST /v1/subscriptions/unsubscribe` (TEXT and EMAIL) with the app's token.
    pub async fn unsubscribe(
        &self,
        app_token: &str,
        user: &GatewayUser,
    ) -> Result<Value, OutboundError> {
        let subscriptions: Vec<Value> = BOTH_CHANNELS
            .iter()
            .map(|(kind, channel)| json!({"type": kind, "channel": channel}))
            .collect();
        let body = json!({ "user": user.to_json(), "subscriptions": subscriptions });
        self.call(
            OutboundRequest::post_json(
                format!("{}/v1/subscriptions/unsubscribe", self.base),
                &body,
            ),
            app_token,
        )
        .await
    }

    /// `POST /v1/subscriptions/messages {to, body}` with the (legacy) messages token.
    pub async fn send_message(
        &self,
        messages_token: &str,
        to: &str,
        text: &str,
    ) -> Result<Value, OutboundError> {
        let body = json!({ "to": to, "body": text });
        self.call(
            OutboundRequest::post_json(format!("{}/v1/subscriptions/messages", self.base), &body),
            messages_token,
        )
        .await
    }
}

/// Whether an eligibility answer makes the member eligible for TEXT (MARKETING).
pub fn text_eligible(answer: &Value) -> bool {
    answer["subscriptionEligibilities"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["subscription"]["channel"] == "TEXT" && e["eligibility"]["isEligible"] == true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contracts_eligibility_sample_is_eligible_for_text() {
        let sample = json!({"subscriptionEligibilities": [
            {"subscription": {"type": "MARKETING", "channel": "TEXT"}, "eligibility": {"isEligible": true}},
            {"subscription": {"type": "MARKETING", "channel": "EMAIL"}, "eligibility": {"isEligible": true}}
        ]});
        assert!(text_eligible(&sample));
        let email_only = json!({"subscriptionEligibilities": [
            {"subscription": {"type": "MARKETING", "channel": "TEXT"}, "eligibility": {"isEligible": false}},
            {"subscription": {"type": "MARKETING", "channel": "EMAIL"}, "eligibility": {"isEligible": true}}
        ]});
        assert!(!text_eligible(&email_only));
        assert!(!text_eligible(&Value::Null));
    }
}
