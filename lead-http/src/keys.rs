//! The credentials the HTTP layer checks, as data: API keys with their
//! scopes (kept as SHA-256 hashes) and the `/metrics` token. The
//! extractors that check a request against them are in [`crate::auth`];
//! the state holds these.

use lead_core::Error;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    /// List and read leads, statistics and dashboards.
    pub read: bool,
    /// Change stages, assignments, events and merges.
    pub write: bool,
}

impl Scopes {
    /// Read only.
    pub const READ: Scopes = Scopes {
        read: true,
        write: false,
    };
    /// Read and write.
    pub const READ_WRITE: Scopes = Scopes {
        read: true,
        write: true,
    };

    /// Parses `read`, `write` or `read,write`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on anything else.
    pub fn parse(text: &str) -> Result<Scopes, Error> {
        let mut scopes = Scopes::default();
        for part in text.split([',', '+', ' ']).filter(|p| !p.is_empty()) {
            match part.trim() {
                "read" => scopes.read = true,
                "write" => scopes.write = true,
                _ => {
                    return Err(Error::invalid(
                        "api_keys",
                        "invalid_scope",
                        "scopes are read and write",
                    ));
                }
            }
        }
        Ok(scopes)
    }
}

/// The configured keys (hashes only).
#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Vec<([u8; 32], Scopes)>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} key(s) [hashes redacted])", self.keys.len())
    }
}

/// The SHA-256 hex digest to put in the configuration for `key`.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl ApiKeys {
    /// Adds a key by its SHA-256 hex digest ([`hash_key`]).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] when `hash` is not 64 hex digits.
    pub fn with_hash(mut self, hash: &str, scopes: Scopes) -> Result<Self, Error> {
        let bytes = hex::decode(hash.trim().trim_start_matches("sha256:"))
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                Error::invalid(
                    "api_keys",
                    "invalid_key_hash",
                    "an API key is configured as the 64-digit SHA-256 hex of the key",
                )
            })?;
        self.keys.push((bytes, scopes));
        Ok(self)
    }

    /// Adds a key given in clear (tests, throw-away setups); only its hash
    /// is kept.
    pub fn with_key(mut self, key: &str, scopes: Scopes) -> Self {
        self.keys
            .push((Sha256::digest(key.as_bytes()).into(), scopes));
        self
    }

    /// The scopes of `presented`, if it is a configured key. Every stored
    /// hash is compared, in constant time, whatever matches.
    pub fn scopes_of(&self, presented: &str) -> Option<Scopes> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (hash, scopes) in &self.keys {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(*scopes);
            }
        }
        found
    }
}

/// The token `GET /metrics` asks for (`LEAD_METRICS_TOKEN`), kept as its
/// SHA-256 only, like the API keys.
#[derive(Clone)]
pub(crate) struct MetricsToken([u8; 32]);

impl MetricsToken {
    pub(crate) fn new(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `presented` is the token. Digests of equal length are
    /// compared in constant time, so neither the token's length nor its
    /// first differing byte shows in the answer's timing.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(self.0.ct_eq(&digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_hash_with_their_scopes() {
        let keys = ApiKeys::default()
            .with_key("reader-key", Scopes::READ)
            .with_hash(&hash_key("writer-key"), Scopes::READ_WRITE)
            .expect("hash");
        assert_eq!(keys.scopes_of("reader-key"), Some(Scopes::READ));
        assert_eq!(keys.scopes_of("writer-key"), Some(Scopes::READ_WRITE));
        assert_eq!(keys.scopes_of("writer-key "), None);
        assert_eq!(keys.scopes_of(""), None);
        assert!(!format!("{keys:?}").contains(&hash_key("reader-key")));
        assert!(ApiKeys::default().with_hash("abc", Scopes::READ).is_err());
        assert_eq!(Scopes::parse("read,write").ok(), Some(Scopes::READ_WRITE));
        assert!(Scopes::parse("admin").is_err());
    }

    #[test]
    fn the_metrics_token_matches_itself_only() {
        let token = MetricsToken::new("prom-token");
        assert!(token.matches("prom-token"));
        for wrong in ["", "prom-token ", "prom-toke", "prom-tokenx", "PROM-TOKEN"] {
            assert!(!token.matches(wrong), "{wrong:?}");
        }
    }
}
