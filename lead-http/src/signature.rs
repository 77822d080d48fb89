//! Webhook signatures, checked over the raw body before anything parses it.
//!
//! Two schemes, both HMAC-SHA256:
//!
//! - the original system's `X-Webhook-Signature`: the hex digest of the raw
//!   body keyed with `WEBHOOK_SECRET_KEY`;
//! - [Standard Webhooks](https://www.standardwebhooks.com/): `webhook-id`,
//!   `webhook-timestamp` (Unix seconds, accepted within ±5 minutes) and
//!   `webhook-signature` (space-separated `v1,<base64>` entries, any of
//!   which may match any configured `whsec_` secret, so keys can rotate)
//!   over `id.timestamp.body`.
//!
//! Every comparison is constant time (`Mac::verify_slice`, `subtle`).
//! The cost of a Standard Webhooks check is bounded before any secret is
//! involved: at most [`MAX_SIGNATURES`] entries in at most
//! [`MAX_SIGNATURE_HEADER_LEN`] bytes, entries that are not 32 bytes are
//! dropped, and the body is hashed once per key, not once per entry.
//! Errors say which rule failed, never what was expected.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use lead_core::standard_webhooks::{MAC_LEN, WebhookSecret};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

type HmacSha256 = Hmac<Sha256>;

/// The original system's signature header.
pub const LEGACY_HEADER: &str = "x-webhook-signature";
pub use lead_core::standard_webhooks::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// The most entries one `webhook-signature` header may list (senders list
/// one per active key; more is refused before any hashing).
pub const MAX_SIGNATURES: usize = 16;

/// The longest `webhook-signature` header accepted, in bytes.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 4 * 1024;

/// How far a Standard Webhooks timestamp may be from now, either way.
pub const TOLERANCE: chrono::Duration = chrono::Duration::minutes(5);

/// The keys signatures are checked with.
#[derive(Default)]
pub struct WebhookKeys {
    legacy: Option<SecretString>,
    standard: Vec<WebhookSecret>,
}

impl fmt::Debug for WebhookKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookKeys")
            .field("legacy", &self.legacy.as_ref().map(|_| "[redacted]"))
            .field(
                "standard",
                &format!("{} key(s) [redacted]", self.standard.len()),
            )
            .finish()
    }
}

pub use lead_core::standard_webhooks::BadSecret;

impl WebhookKeys {
    /// No keys: every request is accepted unsigned.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds the original system's `WEBHOOK_SECRET_KEY` (used as given, as
    /// bytes of its UTF-8 text).
    pub fn with_legacy(mut self, secret: SecretString) -> Self {
        self.legacy = Some(secret);
        self
    }

    /// Adds a Standard Webhooks secret (`whsec_` + base64; the prefix is
    /// optional). Add several to rotate keys.
    pub fn with_standard(mut self, secret: &str) -> Result<Self, BadSecret> {
        self.standard.push(WebhookSecret::parse(secret)?);
        Ok(self)
    }

    /// True when at least one key is configured, so unsigned requests are
    /// refused.
    pub fn required(&self) -> bool {
        self.legacy.is_some() || !self.standard.is_empty()
    }

    /// Checks the request's signature headers against `body`.
    ///
    /// Standard Webhooks headers are checked when present (and a
    /// Standard Webhooks key is configured), otherwise
    /// `X-Webhook-Signature`. With no keys at all every request is
    /// [`Verified::Unsigned`].
    ///
    /// # Errors
    ///
    /// [`SignatureError`] naming the rule that failed.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Verified, SignatureError> {
        let standard = [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER]
            .iter()
            .any(|h| headers.contains_key(*h));
        if standard && !self.standard.is_empty() {
            return self.verify_standard(headers, body, now);
        }
        if let Some(secret) = &self.legacy
            && let Some(value) = headers.get(LEGACY_HEADER)
        {
            return verify_legacy(secret, value.as_bytes(), body);
        }
        if self.required() {
            return Err(SignatureError::Missing);
        }
        Ok(Verified::Unsigned)
    }

    fn verify_standard(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Verified, SignatureError> {
        let text = |name: &'static str| {
            headers
                .get(name)
                .ok_or(SignatureError::MissingHeader(name))?
                .to_str()
                .map_err(|_| SignatureError::Malformed(name))
        };
        // The length cap comes before anything reads the header.
        if headers
            .get(SIGNATURE_HEADER)
            .is_some_and(|v| v.len() > MAX_SIGNATURE_HEADER_LEN)
        {
            return Err(SignatureError::OverLimit);
        }
        let id = text(ID_HEADER)?;
        let timestamp = text(TIMESTAMP_HEADER)?;
        let signatures = text(SIGNATURE_HEADER)?;
        if id.is_empty() {
            return Err(SignatureError::Malformed(ID_HEADER));
        }
        let seconds: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::Malformed(TIMESTAMP_HEADER))?;
        let signed_at = DateTime::<Utc>::from_timestamp(seconds, 0)
            .ok_or(SignatureError::Malformed(TIMESTAMP_HEADER))?;
        if signed_at < now - TOLERANCE {
            return Err(SignatureError::TooOld);
        }
        if signed_at > now + TOLERANCE {
            return Err(SignatureError::InFuture);
        }
        let candidates = candidates(signatures)?;
        let (matched, _macs) = self.match_standard(&candidates, id, timestamp, body);
        if matched {
            Ok(Verified::Standard { id: id.to_owned() })
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// True when one of `candidates` is the MAC of `id.timestamp.body`
    /// under one of the keys, with how many MACs were computed: at most
    /// one per key, whatever the number of candidates, and none without
    /// a candidate (the body is hashed once per key, never per entry).
    /// Every comparison is constant time.
    fn match_standard(
        &self,
        candidates: &[[u8; MAC_LEN]],
        id: &str,
        timestamp: &str,
        body: &[u8],
    ) -> (bool, usize) {
        let mut macs = 0;
        if candidates.is_empty() {
            return (false, macs);
        }
        for key in &self.standard {
            let expected = key.mac(id, timestamp, body);
            macs += 1;
            // No early exit between candidates: the time taken does not
            // depend on which one matched.
            let matched = candidates.iter().fold(Choice::from(0), |any, candidate| {
                any | expected.as_slice().ct_eq(candidate)
            });
            if bool::from(matched) {
                return (true, macs);
            }
        }
        (false, macs)
    }
}

/// The `v1,` entries of a `webhook-signature` header that can be an
/// HMAC-SHA256 (base64 of exactly 32 bytes); other entries are ignored.
///
/// # Errors
///
/// [`SignatureError::OverLimit`] when the header lists more than
/// [`MAX_SIGNATURES`] entries.
fn candidates(header: &str) -> Result<Vec<[u8; MAC_LEN]>, SignatureError> {
    let entries = header.split(' ').filter(|e| !e.is_empty());
    if entries.clone().nth(MAX_SIGNATURES).is_some() {
        return Err(SignatureError::OverLimit);
    }
    Ok(entries
        .filter_map(|entry| entry.strip_prefix("v1,"))
        // Base64 of 32 bytes is 44 characters: anything longer is not one.
        .filter(|b64| b64.len() <= 44)
        .filter_map(|b64| BASE64.decode(b64).ok())
        .filter_map(|sig| <[u8; MAC_LEN]>::try_from(sig.as_slice()).ok())
        .collect())
}

fn verify_legacy(
    secret: &SecretString,
    header: &[u8],
    body: &[u8],
) -> Result<Verified, SignatureError> {
    let header =
        std::str::from_utf8(header).map_err(|_| SignatureError::Malformed(LEGACY_HEADER))?;
    let header = header.trim();
    // Some senders prefix the algorithm, as GitHub does.
    let header = header.strip_prefix("sha256=").unwrap_or(header);
    let expected = hex::decode(header).map_err(|_| SignatureError::Malformed(LEGACY_HEADER))?;
    let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
        .map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map(|()| Verified::Legacy)
        .map_err(|_| SignatureError::Mismatch)
}

/// Signs `body` the way the original system's senders do: hex HMAC-SHA256.
pub fn sign_legacy(secret: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Signs a Standard Webhooks message: the `webhook-signature` value
/// (`v1,<base64>`) for `secret` (`whsec_…`).
///
/// # Errors
///
/// [`BadSecret`] when the secret is not base64.
pub fn sign_standard(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, BadSecret> {
    Ok(WebhookSecret::parse(secret)?.sign(id, timestamp, body))
}

/// How a request proved where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// `X-Webhook-Signature` matched.
    Legacy,
    /// A Standard Webhooks signature matched; `id` is the message id, which
    /// makes a replay of the same message idempotent.
    Standard {
        /// The `webhook-id` header.
        id: String,
    },
    /// No keys are configured: nothing was checked.
    Unsigned,
    /// Keys are configured, but this unsigned post came from a configured
    /// public form (an anonymous visitor's browser).
    PublicForm,
    /// No signature was checked: the request presented an API key with the
    /// `write` scope; `sender` tells keys apart (a prefix of its SHA-256).
    ApiKey {
        /// Which key (never the key itself).
        sender: String,
    },
}

impl Verified {
    /// Whether the sender proved who it is (a signature or a write key):
    /// only then may its capture change a known lead.
    pub fn is_verified(&self) -> bool {
        !matches!(self, Verified::Unsigned | Verified::PublicForm)
    }
}

/// Why a signature was refused (all answered `401`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Keys are configured but the request carries no signature.
    #[error("the request is not signed (X-Webhook-Signature or webhook-signature)")]
    Missing,
    /// One Standard Webhooks header is there but another is missing.
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    /// A signature header is not in its format.
    #[error("the {0} header is malformed")]
    Malformed(&'static str),
    /// The signature does not match the body.
    #[error("the signature does not match the body")]
    Mismatch,
    /// The timestamp is more than 5 minutes old (a replay).
    #[error("the webhook-timestamp is too old")]
    TooOld,
    /// The timestamp is more than 5 minutes ahead.
    #[error("the webhook-timestamp is in the future")]
    InFuture,
    /// The `webhook-signature` header lists more than [`MAX_SIGNATURES`]
    /// entries or is longer than [`MAX_SIGNATURE_HEADER_LEN`] bytes.
    #[error(
        "the webhook-signature header is over its limits (at most 16 signatures in 4096 bytes)"
    )]
    OverLimit,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[derive(serde::Deserialize)]
    struct Vectors {
        vectors: Vec<Vector>,
    }

    #[derive(serde::Deserialize)]
    struct Vector {
        secret: String,
        webhook_id: String,
        webhook_timestamp: i64,
        payload: String,
        expected_signature: String,
    }

    fn vectors() -> Vec<Vector> {
        let text = include_str!("../tests/data/standard-webhooks-vectors.json");
        serde_json::from_str::<Vectors>(text)
            .expect("test vectors parse")
            .vectors
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).expect("valid instant")
    }

    fn standard_headers(id: &str, ts: i64, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ID_HEADER, HeaderValue::from_str(id).expect("id"));
        h.insert(
            TIMESTAMP_HEADER,
            HeaderValue::from_str(&ts.to_string()).expect("ts"),
        );
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(sig).expect("sig"));
        h
    }

    #[test]
    fn the_reference_vectors_sign_and_verify() {
        for v in vectors() {
            let sig = sign_standard(
                &v.secret,
                &v.webhook_id,
                v.webhook_timestamp,
                v.payload.as_bytes(),
            )
            .expect("sign");
            assert_eq!(sig, v.expected_signature);
            let keys = WebhookKeys::none().with_standard(&v.secret).expect("key");
            let headers =
                standard_headers(&v.webhook_id, v.webhook_timestamp, &v.expected_signature);
            assert_eq!(
                keys.verify(&headers, v.payload.as_bytes(), at(v.webhook_timestamp)),
                Ok(Verified::Standard {
                    id: v.webhook_id.clone()
                })
            );
            // The prefix is optional.
            let bare = v.secret.trim_start_matches("whsec_");
            let keys = WebhookKeys::none().with_standard(bare).expect("key");
            assert!(
                keys.verify(&headers, v.payload.as_bytes(), at(v.webhook_timestamp))
                    .is_ok()
            );
        }
    }

    #[test]
    fn a_changed_body_or_a_bad_signature_is_a_mismatch() {
        let v = &vectors()[0];
        let keys = WebhookKeys::none().with_standard(&v.secret).expect("key");
        let now = at(v.webhook_timestamp);
        let good = standard_headers(&v.webhook_id, v.webhook_timestamp, &v.expected_signature);
        assert_eq!(
            keys.verify(&good, b"{}", now),
            Err(SignatureError::Mismatch)
        );
        for sig in ["v1,dawfeoifkpqwoekfpqoekf", "v1,", "v2,abc", ""] {
            let h = standard_headers(&v.webhook_id, v.webhook_timestamp, sig);
            assert_eq!(
                keys.verify(&h, v.payload.as_bytes(), now),
                Err(SignatureError::Mismatch),
                "{sig:?}"
            );
        }
    }

    #[test]
    fn timestamps_outside_five_minutes_are_refused() {
        let v = &vectors()[0];
        let keys = WebhookKeys::none().with_standard(&v.secret).expect("key");
        let h = standard_headers(&v.webhook_id, v.webhook_timestamp, &v.expected_signature);
        let body = v.payload.as_bytes();
        assert!(keys.verify(&h, body, at(v.webhook_timestamp + 300)).is_ok());
        assert_eq!(
            keys.verify(&h, body, at(v.webhook_timestamp + 301)),
            Err(SignatureError::TooOld)
        );
        assert!(keys.verify(&h, body, at(v.webhook_timestamp - 300)).is_ok());
        assert_eq!(
            keys.verify(&h, body, at(v.webhook_timestamp - 301)),
            Err(SignatureError::InFuture)
        );
    }

    #[test]
    fn any_listed_signature_may_match_any_key_so_keys_rotate() {
        let v = &vectors()[0];
        let old = &vectors()[1].secret;
        let keys = WebhookKeys::none()
            .with_standard(old)
            .and_then(|k| k.with_standard(&v.secret))
            .expect("keys");
        let header = format!("v1,Zm9v v2,xyz {}", v.expected_signature);
        let h = standard_headers(&v.webhook_id, v.webhook_timestamp, &header);
        assert!(
            keys.verify(&h, v.payload.as_bytes(), at(v.webhook_timestamp))
                .is_ok()
        );
    }

    /// `n` entries that each decode to 32 bytes, none of them right.
    fn wrong_signatures(n: usize) -> String {
        let wrong = format!("v1,{}", BASE64.encode([7u8; MAC_LEN]));
        vec![wrong; n].join(" ")
    }

    #[test]
    fn the_body_is_hashed_once_per_key_whatever_the_number_of_entries() {
        let v = &vectors()[0];
        let keys = WebhookKeys::none()
            .with_standard(&vectors()[1].secret)
            .and_then(|k| k.with_standard("whsec_aHVudGVyMg=="))
            .and_then(|k| k.with_standard(&v.secret))
            .expect("keys");
        let id = v.webhook_id.as_str();
        let ts = v.webhook_timestamp.to_string();
        let body = v.payload.as_bytes();

        // The most entries a header may list, none matching: one MAC per key.
        let header = wrong_signatures(MAX_SIGNATURES);
        let many = candidates(&header).expect("within the cap");
        assert_eq!(many.len(), MAX_SIGNATURES);
        assert_eq!(keys.match_standard(&many, id, &ts, body), (false, 3));

        // The right one last still costs at most one MAC per key.
        let header = format!(
            "{} {}",
            wrong_signatures(MAX_SIGNATURES - 1),
            v.expected_signature
        );
        let listed = candidates(&header).expect("within the cap");
        assert_eq!(keys.match_standard(&listed, id, &ts, body), (true, 3));

        // Entries that cannot be an HMAC-SHA256 are dropped before hashing.
        let short = format!("v1,{}", BASE64.encode([7u8; 31]));
        let long = format!("v1,{}", BASE64.encode([7u8; 33]));
        let odd = [short.as_str(), long.as_str(), "v1,Zm9v", "v2,abc", "v1,!!"].join(" ");
        let none = candidates(&odd).expect("within the cap");
        assert!(none.is_empty());
        assert_eq!(keys.match_standard(&none, id, &ts, body), (false, 0));
    }

    #[test]
    fn a_header_over_its_caps_is_refused_before_any_hashing() {
        let v = &vectors()[0];
        let keys = WebhookKeys::none().with_standard(&v.secret).expect("key");
        let now = at(v.webhook_timestamp);
        let body = vec![b'x'; 1024 * 1024];

        // 10 000 entries: over the length cap.
        let h = standard_headers(
            &v.webhook_id,
            v.webhook_timestamp,
            &wrong_signatures(10_000),
        );
        assert_eq!(keys.verify(&h, &body, now), Err(SignatureError::OverLimit));

        // One entry too many, well within the length cap, the right one
        // among them: still refused.
        let header = format!(
            "{} {}",
            wrong_signatures(MAX_SIGNATURES),
            v.expected_signature
        );
        assert!(header.len() <= MAX_SIGNATURE_HEADER_LEN);
        assert_eq!(candidates(&header), Err(SignatureError::OverLimit));
        let h = standard_headers(&v.webhook_id, v.webhook_timestamp, &header);
        assert_eq!(
            keys.verify(&h, v.payload.as_bytes(), now),
            Err(SignatureError::OverLimit)
        );

        // At the caps the right signature is found.
        let header = format!(
            "{} {}",
            wrong_signatures(MAX_SIGNATURES - 1),
            v.expected_signature
        );
        let h = standard_headers(&v.webhook_id, v.webhook_timestamp, &header);
        assert!(keys.verify(&h, v.payload.as_bytes(), now).is_ok());

        // The message states the caps as they are.
        let message = SignatureError::OverLimit.to_string();
        assert!(
            message.contains(&MAX_SIGNATURES.to_string())
                && message.contains(&MAX_SIGNATURE_HEADER_LEN.to_string()),
            "{message}"
        );
    }

    #[test]
    fn missing_standard_headers_are_named() {
        let v = &vectors()[0];
        let keys = WebhookKeys::none().with_standard(&v.secret).expect("key");
        let mut h = standard_headers(&v.webhook_id, v.webhook_timestamp, &v.expected_signature);
        h.remove(TIMESTAMP_HEADER);
        assert_eq!(
            keys.verify(&h, v.payload.as_bytes(), at(v.webhook_timestamp)),
            Err(SignatureError::MissingHeader(TIMESTAMP_HEADER))
        );
        assert_eq!(
            keys.verify(&HeaderMap::new(), b"{}", Utc::now()),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn the_legacy_header_is_hex_hmac_of_the_raw_body() {
        let keys = WebhookKeys::none().with_legacy(SecretString::from("s3cret"));
        let body = br#"{"email":"ana@acme.com"}"#;
        let sig = sign_legacy("s3cret", body);
        assert_eq!(sig.len(), 64);
        let mut h = HeaderMap::new();
        h.insert(LEGACY_HEADER, HeaderValue::from_str(&sig).expect("sig"));
        assert_eq!(keys.verify(&h, body, Utc::now()), Ok(Verified::Legacy));
        h.insert(
            LEGACY_HEADER,
            HeaderValue::from_str(&sig.to_uppercase()).expect("sig"),
        );
        assert_eq!(keys.verify(&h, body, Utc::now()), Ok(Verified::Legacy));
        assert_eq!(
            keys.verify(&h, b"{\"email\":\"eve@acme.com\"}", Utc::now()),
            Err(SignatureError::Mismatch)
        );
        h.insert(LEGACY_HEADER, HeaderValue::from_static("not-hex"));
        assert_eq!(
            keys.verify(&h, body, Utc::now()),
            Err(SignatureError::Malformed(LEGACY_HEADER))
        );
    }

    #[test]
    fn without_keys_nothing_is_checked_and_debug_hides_keys() {
        assert_eq!(
            WebhookKeys::none().verify(&HeaderMap::new(), b"x", Utc::now()),
            Ok(Verified::Unsigned)
        );
        let keys = WebhookKeys::none()
            .with_legacy(SecretString::from("hunter2"))
            .with_standard("whsec_aHVudGVyMg==")
            .expect("key");
        let shown = format!("{keys:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("aHVudGVyMg"),
            "{shown}"
        );
        assert_eq!(
            WebhookKeys::none().with_standard("whsec_!!").err(),
            Some(BadSecret)
        );
    }
}
