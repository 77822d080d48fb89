//! lead-notify against real receivers: a local HTTP receiver (wiremock)
//! for Slack and the webhooks, a real SMTP server (aiosmtpd, started by
//! the tests; `.ci/smtp-setup` installs it) for e-mail, and the README's
//! samples.
//!
//! One test binary: each links the whole dependency tree.

// With a feature off, some fixtures have no test to serve.
#[cfg_attr(
    not(all(feature = "slack", feature = "webhooks", feature = "email")),
    allow(dead_code)
)]
mod common;
#[cfg(feature = "email")]
mod email;
#[cfg(all(feature = "slack", feature = "webhooks", feature = "email"))]
mod readme;
#[cfg(feature = "webhooks")]
mod review;
#[cfg(feature = "slack")]
mod slack;
#[cfg(feature = "webhooks")]
mod webhook;
