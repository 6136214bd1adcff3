//! Email, through one port: Amazon SES (v2 `SendEmail`) from the sender address the
//! template names (`SENDER_EMAIL`). Locally the stand-in's emulator plays SES and the
//! stand-in shows what was sent (`GET /_local/emails`).

/// An email to one recipient, plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the email could not be sent: {0}")]
pub struct MailError(String);

#[derive(Clone, Debug)]
pub struct Mailer {
    client: aws_sdk_sesv2::Client,
    sender: String,
}

impl Mailer {
    pub fn new(sdk: &aws_config::SdkConfig, sender: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_sesv2::Client::new(sdk),
            sender: sender.into(),
        }
    }

    pub async fn send(&self, email: &Email) -> Result<(), MailError> {
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
        let text = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(|e| MailError(e.to_string()))
        };
        let message = Message::builder()
            .subject(text(&email.subject)?)
            .body(Body::builder().text(text(&email.text)?).build())
            .build();
        self.client
            .send_email()
            .from_email_address(&self.sender)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| MailError(aws_sdk_sesv2::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
