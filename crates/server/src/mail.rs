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
            // A relay's refusal quotes the recipient ("550 <ani@...> unknown"): the error
            // keeps the relay's words but never an address, since it is logged.
            .map_err(|e| MailError::Smtp(without_addresses(&e.to_string())))
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
/// `text` with every email address (a word with `@` inside) replaced by `[address]`.
pub fn without_addresses(text: &str) -> String {
    let is_break = |c: char| c.is_whitespace() || "<>\"'(),;[]{}".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let at = word.find('@');
        if at.is_some_and(|i| i > 0 && i + 1 < word.len()) {
            out.push_str("[address]");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_break(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_are_taken_out_of_relay_answers() {
        let said = "permanent error (550): 5.1.1 <Ani.Putri+x@mail.example.id>: Recipient address rejected; also bob@x.y";
        let clean = super::without_addresses(said);
        assert_eq!(
            clean,
            "permanent error (550): 5.1.1 <[address]>: Recipient address rejected; also [address]"
        );
        assert_eq!(super::without_addresses("a @ b, x@, @y"), "a @ b, x@, @y");
    }
}
