//! Account emails (address verification, password reset, policy notices) through an SMTP relay
//! (`smtp_url`), with `lettre`. Without a relay nothing is sent. Messages are plain text in
//! the user's interface language; addresses and links are never logged.

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::ServerConfig;

/// The configured relay, if any.
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("no SMTP relay configured (smtp_url)")]
    NotConfigured,
    #[error("invalid address")]
    Address,
    #[error("SMTP: {0}")]
    Smtp(String),
}

impl Mailer {
    /// The mailer for `config.smtp_url`; an invalid URL or sender is a start-up error.
    pub fn new(config: &ServerConfig) -> anyhow::Result<Mailer> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail_from: {e}"))?;
        let transport = match &config.smtp_url {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| anyhow::anyhow!("smtp_url: {e}"))?
                    .build(),
            ),
            None => None,
        };
        Ok(Mailer { transport, from })
    }

    /// Whether a relay is configured.
    pub fn enabled(&self) -> bool {
        self.transport.is_some()
    }

    /// Sends a plain-text message.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        let Some(transport) = &self.transport else {
            return Err(MailError::NotConfigured);
        };
        let to: Mailbox = to.parse().map_err(|_| MailError::Address)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|_| MailError::Address)?;
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError::Smtp(e.to_string()))
    }

    /// Sends, logging a failure (without the address) instead of returning it: for messages
    /// whose failure must not change the answer (a reset request must not reveal accounts).
    pub async fn send_logged(&self, to: &str, subject: &str, body: String) {
        match self.send(to, subject, body).await {
            Ok(()) => {}
            Err(MailError::NotConfigured) => {
                tracing::warn!("account email not sent: no smtp_url configured")
            }
            Err(e) => tracing::error!(error = %e, "account email not sent"),
        }
    }
}
