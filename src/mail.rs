//! Mail notifications through SMTP (`CASEFILE_SMTP_URL`, `CASEFILE_SMTP_FROM`).
//!
//! The mail channel ([`channel`]) reads the change record like every delivery channel
//! (see `crate::delivery`): [`compose`] turns an event into the mails it makes (none for most),
//! [`Mailer`] sends them through the configured SMTP server with lettre. A mail has
//! the `Message-ID` `<event id>.<part>@<sender's domain>`, so the one repeat a crash can
//! cause is recognisable; `Auto-Submitted: auto-generated` keeps auto-responders quiet.
//!
//! A send that fails for a reason that may pass (no connection, a timeout, a 4xx reply)
//! is retried with backoff, holding back the later mail of the tenant; a mail the server
//! refuses for good (a 5xx reply) is sent again to each recipient alone, so one bad
//! address does not cost the others their mail, and the refused ones are logged and
//! skipped.

pub mod channel;
pub mod compose;
pub mod render;

use std::time::Duration;

use anyhow::Context as _;
use lettre::message::header::{self, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::MailConfig;
pub use compose::{Mail, compose};

/// How long one SMTP command may take before the send counts as failed (and is retried).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends mail through the configured SMTP server. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right side of every `Message-ID`: the sender's domain.
    domain: String,
    /// `host:port` of the SMTP server, for the logs (never the credentials).
    server: String,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// It may work later: retried with backoff.
    #[error("the mail could not be sent now: {0}")]
    Transient(String),
    /// The server refused it for good.
    #[error("the mail was refused: {0}")]
    Permanent(String),
}

impl Mailer {
    /// The mailer of the configuration; `None` when `CASEFILE_SMTP_URL` is unset (mail off).
    /// A malformed URL or sender is an error, so a typo stops the start, not the mail.
    pub fn from_config(config: &MailConfig) -> anyhow::Result<Option<Self>> {
        let Some(url) = config.smtp_url.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let parsed = url::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "smtp" | "smtps") && u.host_str().is_some())
            .context("CASEFILE_SMTP_URL is not an smtp:// or smtps:// URL with a host")?;
        let server = format!(
            "{}:{}",
            parsed.host_str().unwrap_or_default(),
            parsed.port().map_or_else(|| "default port".to_owned(), |p| p.to_string())
        );
        let tls = parsed.query_pairs().any(|(k, _)| k == "tls");
        if parsed.password().is_some() && parsed.scheme() == "smtp" && !tls {
            tracing::warn!(%server, "CASEFILE_SMTP_URL sends its password without TLS: add ?tls=required or use smtps://");
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("CASEFILE_SMTP_URL: {e}"))?
            .timeout(Some(SMTP_TIMEOUT))
            .pool_config(PoolConfig::new().max_size(4))
            .build();
        let from: Mailbox = config
            .smtp_from
            .parse()
            .map_err(|e| anyhow::anyhow!("CASEFILE_SMTP_FROM is not a mail address: {e}"))?;
        let domain = from.email.domain().to_owned();
        Ok(Some(Self { transport, from, domain, server }))
    }

    /// `host:port` of the SMTP server.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The message of `mail` to `to`.
    fn message(&self, mail: &Mail, to: &[Address]) -> Result<Message, SendError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(render::header_text(&mail.content.subject))
            .message_id(Some(message_id(mail, &self.domain)))
            .header(AutoSubmitted);
        for address in to {
            builder = builder.to(Mailbox::new(None, address.clone()));
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                mail.content.text.clone(),
                mail.content.html.clone(),
            ))
            .map_err(|e| SendError::Permanent(format!("building the message: {e}")))
    }

    /// Sends `mail` to all its recipients in one message; when the server refuses it for
    /// good, to each recipient alone. `Err(Transient)`: nothing more can be done now.
    pub async fn send(&self, mail: &Mail) -> Result<(), SendError> {
        let to: Vec<Address> = mail.to.iter().filter_map(|a| a.parse().ok()).collect();
        if to.is_empty() {
            return Ok(());
        }
        match self.send_to(mail, &to).await {
            Err(SendError::Permanent(reason)) if to.len() > 1 => {
                tracing::warn!(%reason, server = %self.server, "the SMTP server refused a mail: sending it to each recipient alone");
                for address in &to {
                    if let Err(SendError::Permanent(reason)) =
                        self.send_to(mail, std::slice::from_ref(address)).await
                    {
                        tracing::warn!(%reason, event = %mail.event, part = mail.part, "a recipient's mail was refused for good: skipped");
                    }
                }
                Ok(())
            }
            Err(SendError::Permanent(reason)) => {
                tracing::warn!(%reason, event = %mail.event, part = mail.part, "a mail was refused for good: skipped");
                Ok(())
            }
            other => other,
        }
    }

    async fn send_to(&self, mail: &Mail, to: &[Address]) -> Result<(), SendError> {
        let message = self.message(mail, to)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_permanent() => Err(SendError::Permanent(error.to_string())),
            Err(error) => Err(SendError::Transient(error.to_string())),
        }
    }
}

/// `<event id>.<part>@<domain>`: the same for every send of the same mail.
pub fn message_id(mail: &Mail, domain: &str) -> String {
    format!("<{}.{}@{}>", mail.event, mail.part, domain)
}

/// `Auto-Submitted: auto-generated` (RFC 3834): a notification, not a person's mail.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

impl header::Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, from: &str) -> MailConfig {
        MailConfig { smtp_url: Some(url.to_owned()), smtp_from: from.to_owned() }
    }

    #[test]
    fn mail_is_off_without_a_url() {
        assert!(matches!(Mailer::from_config(&MailConfig::default()), Ok(None)));
        assert!(matches!(Mailer::from_config(&config(" ", "a@b.c")), Ok(None)));
    }

    #[tokio::test]
    async fn bad_urls_and_senders_stop_the_start() {
        assert!(Mailer::from_config(&config("http://mail.example.com", "a@b.c")).is_err());
        assert!(Mailer::from_config(&config("not a url", "a@b.c")).is_err());
        assert!(Mailer::from_config(&config("smtp://127.0.0.1:2525", "not an address")).is_err());
        let mailer = Mailer::from_config(&config(
            "smtp://user:secret@127.0.0.1:2525",
            "casefile <alerts@example.com>",
        ));
        let mailer = mailer.ok().flatten().expect("a mailer");
        assert_eq!(mailer.server(), "127.0.0.1:2525");
        assert_eq!(mailer.domain, "example.com");
    }

    #[tokio::test]
    async fn messages_carry_a_stable_id_and_one_line_headers() {
        let mailer = Mailer::from_config(&config("smtp://127.0.0.1:2525", "ops@example.com"))
            .ok()
            .flatten()
            .expect("a mailer");
        let event = uuid::Uuid::now_v7();
        let mail = Mail {
            event,
            part: "created",
            to: vec!["a@example.com".into()],
            content: render::Content {
                subject: "[casefile] x\r\nBcc: evil@example.com".into(),
                text: "t".into(),
                html: "<p>h</p>".into(),
            },
        };
        let to = vec!["a@example.com".parse().expect("address")];
        let formatted = mailer.message(&mail, &to).map(|m| m.formatted()).expect("message");
        let text = String::from_utf8_lossy(&formatted);
        assert!(text.contains(&format!("Message-ID: <{event}.created@example.com>")), "{text}");
        assert!(text.contains("Auto-Submitted: auto-generated"), "{text}");
        assert!(!text.contains("\r\nBcc:"), "{text}");
        assert!(!text.to_lowercase().contains("\nbcc"), "{text}");
    }
}
