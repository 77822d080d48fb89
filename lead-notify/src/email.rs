//! E-mail to the rep a notification concerns, over SMTP.
//!
//! The recipient is [`Event::recipient`](lead_core::notify::Event::recipient)
//! (the new rep of an assignment, the digest's rep, the lead's rep
//! otherwise); an event with none is skipped. Each message is
//! `multipart/alternative` (plain text and HTML) rendered from the
//! templates (see [`templates`](self#templates)), with a `Message-ID`
//! made of the notification's id (a message sent again after a crash is
//! the same message to mail clients) and `Auto-Submitted: auto-generated`
//! (RFC 3834: no out-of-office replies to it).
//!
//! The server's answers: 4xx, connection errors and time-outs are
//! temporary; 5xx fails for good (530/534/535/538 as refused
//! credentials, 550 and the like as a refused message); an address the
//! mail library cannot write is refused for good.
//!
//! # Templates
//!
//! Three per event kind (`high_priority_lead`, `assigned`,
//! `stage_changed`, `digest`): `<kind>.subject.txt`, `<kind>.txt`,
//! `<kind>.html`. A file of the same name in
//! [`EmailConfig::templates_dir`] replaces the built-in one. They are
//! [minijinja](https://docs.rs/minijinja) (Jinja) templates; `.html` ones
//! escape what they insert. A template sees the event as JSON (`lead`,
//! `to`, `from`, `origin`, `rep`, `items`: the webhook payload's `data`),
//! `kind` and `link` (the lead's link or none), the function
//! `lead_link(ext_id)` and the filters `datetime` and `date`.

mod templates;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lead_core::notify::Notification;
use lead_core::ports::{Delivery, Notifier};
use lead_core::{Error, Result};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls as SmtpTls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

pub use templates::Rendered;
use templates::Templates;

use crate::error::ConfigError;
use crate::links::LeadLinks;

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tls {
    /// Plain SMTP (a relay on the same machine, a local test server).
    /// With credentials, only to a loopback host: the password would
    /// travel in clear text.
    None,
    /// `STARTTLS` on a plain connection, required (port 587; the default).
    #[default]
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
}

/// How to reach the mail server and what to send.
#[derive(Clone)]
pub struct EmailConfig {
    host: String,
    port: u16,
    from: String,
    tls: Tls,
    credentials: Option<(String, SecretString)>,
    templates_dir: Option<PathBuf>,
    links: LeadLinks,
    timeout: Duration,
}

impl fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("tls", &self.tls)
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|(user, _)| (user, "[redacted]")),
            )
            .field("templates_dir", &self.templates_dir)
            .field("links", &self.links)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl EmailConfig {
    /// Sends through `host:port` (`SMTP_HOST`, `SMTP_PORT`) from `from`
    /// (`SMTP_FROM`: `leads@example.com` or `Lead capture
    /// <leads@example.com>`), with STARTTLS, no credentials, the built-in
    /// templates, no lead links and a 30 s time-out.
    pub fn new(host: &str, port: u16, from: &str) -> Self {
        EmailConfig {
            host: host.trim().to_owned(),
            port,
            from: from.trim().to_owned(),
            tls: Tls::default(),
            credentials: None,
            templates_dir: None,
            links: LeadLinks::none(),
            timeout: Duration::from_secs(30),
        }
    }

    /// How the connection is protected (`SMTP_TLS`).
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// Logs in with `user` and `password` (`SMTP_USERNAME`,
    /// `SMTP_PASSWORD`; AUTH PLAIN or LOGIN).
    pub fn credentials(mut self, user: &str, password: SecretString) -> Self {
        self.credentials = Some((user.to_owned(), password));
        self
    }

    /// A directory whose template files replace the built-in ones of the
    /// same name (the server: `templates_dir` in `LEAD_NOTIFICATIONS_FILE`);
    /// `None` keeps the built-in ones.
    pub fn templates_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.templates_dir = dir;
        self
    }

    /// Messages link to the lead.
    pub fn links(mut self, links: LeadLinks) -> Self {
        self.links = links;
        self
    }

    /// How long each step with the server (connecting, each command) may
    /// take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Sends notifications by e-mail to the rep they concern.
pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    templates: Templates,
    links: LeadLinks,
    /// `host:port`, for messages.
    server: String,
}

impl fmt::Debug for EmailNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailNotifier")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

impl EmailNotifier {
    /// Checks the configuration and compiles the templates (each kind is
    /// rendered once with a sample event, so a broken override is found
    /// now, not when a lead comes in). Nothing connects yet.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Smtp`] naming the setting (`SMTP_HOST`, `SMTP_PORT`,
    /// `SMTP_FROM`, `SMTP_TLS`), [`ConfigError::Template`] naming the
    /// template file that cannot be read, compiled or rendered.
    pub fn new(config: EmailConfig) -> Result<EmailNotifier, ConfigError> {
        let setting = |setting: &'static str, reason: String| ConfigError::Smtp { setting, reason };
        if config.host.is_empty() {
            return Err(setting("SMTP_HOST", "must name the mail server".into()));
        }
        if config.port == 0 {
            return Err(setting("SMTP_PORT", "must not be 0".into()));
        }
        let from: Mailbox = config.from.parse().map_err(|e| {
            setting(
                "SMTP_FROM",
                format!(
                    "\"{}\" is not an e-mail address (`leads@example.com` or `Name <leads@example.com>`): {e}",
                    config.from
                ),
            )
        })?;
        let loopback = config.host.eq_ignore_ascii_case("localhost")
            || config
                .host
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let tls = match config.tls {
            Tls::None if config.credentials.is_some() && !loopback => {
                return Err(setting(
                    "SMTP_TLS",
                    "none would send the password in clear text: use STARTTLS or implicit TLS \
                     (plain SMTP with credentials only to a loopback server)"
                        .into(),
                ));
            }
            Tls::None => SmtpTls::None,
            Tls::StartTls => SmtpTls::Required(tls_parameters(&config.host)?),
            Tls::Implicit => SmtpTls::Wrapper(tls_parameters(&config.host)?),
        };
        let templates = Templates::load(config.templates_dir.as_deref(), &config.links)?;
        let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(config.timeout));
        if let Some((user, password)) = &config.credentials {
            transport = transport.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(EmailNotifier {
            transport: transport.build(),
            from,
            templates,
            links: config.links,
            server: format!("{}:{}", config.host, config.port),
        })
    }

    /// The subject and bodies `notification`'s e-mail has (whoever it
    /// goes to): for previews, and what [`Notifier::notify`] sends.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] when a template fails on this event.
    pub fn render(&self, notification: &Notification) -> Result<Rendered> {
        self.templates
            .render(notification, &self.links)
            .map_err(|(name, e)| {
                Error::internal(format!("e-mail template {name} failed")).caused_by(e)
            })
    }

    fn message(&self, notification: &Notification, to: Address) -> Result<Message> {
        let rendered = self.render(notification)?;
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(rendered.subject)
            .message_id(Some(format!(
                "<{}@{}>",
                notification.id.simple(),
                self.from.email.domain()
            )))
            .date_now()
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ))
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|e| Error::internal("the e-mail could not be built").caused_by(e))
    }
}

fn tls_parameters(host: &str) -> Result<TlsParameters, ConfigError> {
    TlsParameters::new(host.to_owned()).map_err(|e| ConfigError::Smtp {
        setting: "SMTP_HOST",
        reason: format!("cannot be checked by TLS ({e})"),
    })
}

#[async_trait]
impl Notifier for EmailNotifier {
    #[tracing::instrument(
        name = "email.notify",
        skip_all,
        fields(notification = %notification.id, kind = %notification.event.kind())
    )]
    async fn notify(&self, notification: &Notification) -> Result<Delivery> {
        let Some(rep) = notification.event.recipient() else {
            return Ok(Delivery::Skipped("no rep to write to"));
        };
        let to: Address = rep.as_str().parse().map_err(|e| {
            Error::invalid(
                "recipient",
                "invalid_email",
                format!("{rep} is not an address an e-mail can go to ({e})"),
            )
        })?;
        let message = self.message(notification, to)?;
        self.transport
            .send(message)
            .await
            .map_err(|e| smtp_error(&self.server, e))?;
        Ok(Delivery::Sent)
    }
}

/// An SMTP failure by what it means. The server's reply is quoted (it
/// never holds the password).
fn smtp_error(server: &str, err: lettre::transport::smtp::Error) -> Error {
    if let Some(code) = err.status() {
        if err.is_transient() {
            return Error::unavailable(format!("the mail server {server} deferred: {err}"));
        }
        return match code.to_string().as_str() {
            "530" | "534" | "535" | "538" => {
                Error::Unauthorized(format!("the mail server {server} refused the login: {err}"))
            }
            _ => Error::NotAllowed(format!(
                "the mail server {server} refused the message: {err}"
            )),
        };
    }
    if err.is_client() {
        // Ours or a setting's to fix (no authentication mechanism both
        // sides know): sending again cannot help.
        return Error::internal(format!("SMTP with {server}: {err}"));
    }
    Error::unavailable(format!("the mail server {server} could not be reached")).caused_by(err)
}

#[cfg(test)]
mod tests;
