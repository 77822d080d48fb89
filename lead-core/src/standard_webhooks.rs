//! [Standard Webhooks](https://www.standardwebhooks.com/) signatures, the
//! one scheme both ways: the capture endpoint checks them on webhooks it
//! receives, the notification webhooks sign what they send.
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}` (the
//! exact bytes sent), the MAC is HMAC-SHA256 under the secret's key (the
//! base64 after `whsec_`), the header value `v1,` + base64 of the MAC.
//! Pure computation: no I/O, no clock.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The message id header (also the receiver's idempotency key).
pub const ID_HEADER: &str = "webhook-id";
/// When the message was signed, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The signatures, space-separated `v1,<base64>` entries.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The length of an HMAC-SHA256, in bytes.
pub const MAC_LEN: usize = 32;

/// A secret that is not a valid Standard Webhooks key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a Standard Webhooks secret must be base64, optionally prefixed with whsec_")]
pub struct BadSecret;

/// A signing key: the bytes of a `whsec_…` secret. Its `Debug` never
/// shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl WebhookSecret {
    /// Reads `whsec_` + base64 (the prefix is optional, as in every
    /// reference library).
    ///
    /// # Errors
    ///
    /// [`BadSecret`] when the rest is not base64 or is empty.
    pub fn parse(secret: &str) -> Result<Self, BadSecret> {
        let encoded = secret.trim();
        let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
        let key = BASE64.decode(encoded).map_err(|_| BadSecret)?;
        if key.is_empty() {
            return Err(BadSecret);
        }
        Ok(WebhookSecret(key))
    }

    /// The key bytes (to compare MACs with).
    pub fn key(&self) -> &[u8] {
        &self.0
    }

    /// The MAC of `id.timestamp.body`.
    pub fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> [u8; MAC_LEN] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// The `webhook-signature` value for a message: `v1,<base64 MAC>`.
    ///
    /// ```
    /// use lead_core::standard_webhooks::WebhookSecret;
    /// // The reference library's test vector.
    /// let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    /// let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
    /// assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /// ```
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mac = self.mac(id, &timestamp.to_string(), body);
        format!("v1,{}", BASE64.encode(mac))
    }
}
