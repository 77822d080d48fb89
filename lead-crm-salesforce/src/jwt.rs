//! The JWT bearer flow's assertion (`../shared/crm-specs/CONTRACTS.md`
//! §1.1): header `{"alg":"RS256"}`, claims `iss` (consumer key), `sub`
//! (username), `aud` (audience) and `exp` (Unix seconds, three minutes
//! ahead), signed with the app's private key. Built fresh at every login,
//! since Salesforce refuses one whose `exp` has passed.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lead_core::{Error, Result};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The form's `grant_type`.
pub(crate) const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How far ahead `exp` is: Salesforce wants it "no more than about three
/// minutes" away.
pub(crate) const LIFETIME_SECS: u64 = 180;

/// The claims Salesforce reads.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) exp: u64,
}

/// The parsed key and the claims that do not change between logins.
pub(crate) struct Signer {
    key: EncodingKey,
    client_id: String,
    username: String,
    audience: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("audience", &self.audience)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Signer {
    /// Reads the key and signs one assertion with it, so a key that cannot
    /// sign (not PEM, encrypted, not RSA, a public key, a certificate) is
    /// refused now, while the program starts, rather than at the first
    /// login. The messages name the setting, never the key's content.
    pub(crate) fn new(
        client_id: &str,
        username: &str,
        private_key: &SecretString,
        audience: &str,
    ) -> Result<Self> {
        for (field, value) in [
            ("client_id", client_id),
            ("username", username),
            ("audience", audience),
        ] {
            if value.trim().is_empty() {
                return Err(Error::invalid(
                    field,
                    "required",
                    format!("the Salesforce JWT bearer flow needs {field}"),
                ));
            }
        }
        // `encode` panics when jsonwebtoken cannot tell which crypto
        // backend to use (both or neither feature on, none installed):
        // another crate of the program could turn the second one on.
        if CryptoProvider::try_get_default().is_none() {
            return Err(Error::internal(
                "Salesforce JWT bearer flow: jsonwebtoken has no crypto provider \
                 (both `rust_crypto` and `aws_lc_rs` are on and none was installed \
                 with CryptoProvider::install_default)",
            ));
        }
        let unusable = |why: &str, cause: &dyn std::fmt::Display| {
            Error::invalid(
                "private_key",
                "invalid_key",
                format!(
                    "the Salesforce JWT bearer key must be an unencrypted RSA private key in PEM \
                     (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`); {why} ({cause})"
                ),
            )
        };
        let key = EncodingKey::from_rsa_pem(private_key.expose_secret().as_bytes())
            .map_err(|e| unusable("this one is not readable as such", &e))?;
        let signer = Signer {
            key,
            client_id: client_id.to_owned(),
            username: username.to_owned(),
            audience: audience.to_owned(),
        };
        // `from_rsa_pem` only reads the PEM and its ASN.1 outline; the RSA
        // key itself is read when signing.
        signer
            .assertion(now())
            .map_err(|e| unusable("this one cannot sign (a public key or a certificate?)", &e))?;
        Ok(signer)
    }

    /// A signed assertion that expires [`LIFETIME_SECS`] after `now`
    /// (Unix seconds).
    pub(crate) fn assertion(&self, now: u64) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        // Salesforce's documented header is `{"alg":"RS256"}` alone.
        header.typ = None;
        let claims = Claims {
            iss: self.client_id.clone(),
            sub: self.username.clone(),
            aud: self.audience.clone(),
            exp: now.saturating_add(LIFETIME_SECS),
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
    }
}

/// Unix seconds now (0 on a clock set before 1970: Salesforce then refuses
/// the assertion as expired, which says what is wrong).
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Flow;

    #[test]
    fn a_key_that_is_not_pem_is_refused_without_quoting_it() {
        let key = SecretString::from(
            "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
        );
        let err = Signer::new("id", "user@acme.example", &key, Flow::PRODUCTION_AUDIENCE)
            .expect_err("refused");
        assert!(
            matches!(&err, Error::Invalid { fields } if fields[0].field == "private_key"),
            "{err:?}"
        );
        assert!(!err.chain().contains("bm90IGEga2V5"), "{}", err.chain());
    }

    #[test]
    fn empty_claims_are_refused_by_name() {
        let key = SecretString::from("irrelevant");
        let err = Signer::new("id", " ", &key, Flow::SANDBOX_AUDIENCE).expect_err("refused");
        assert!(err.to_string().contains("username"), "{err}");
    }
}
