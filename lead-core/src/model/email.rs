//! E-mail addresses that have been parsed once and are trusted afterwards.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A syntactically valid, trimmed, lower-cased e-mail address whose domain
/// has a public suffix (so `user@localhost` is rejected).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Parses and normalizes an address.
    ///
    /// # Example
    ///
    /// ```
    /// use lead_core::Email;
    /// let e = Email::parse("  Ana.Lopez@Example.COM ").unwrap();
    /// assert_eq!(e.as_str(), "ana.lopez@example.com");
    /// assert!(Email::parse("not-an-email").is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<Self> {
        let candidate = raw.trim().to_lowercase();
        if candidate.is_empty() {
            return Err(Error::invalid("email", "required", "email is required"));
        }
        if !email_address::EmailAddress::is_valid(&candidate) {
            return Err(Error::invalid(
                "email",
                "invalid_email",
                "email is not a valid address",
            ));
        }
        let domain = candidate
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or_default();
        let has_known_suffix =
            domain.contains('.') && psl::suffix(domain.as_bytes()).is_some_and(|s| s.is_known());
        if !has_known_suffix {
            return Err(Error::invalid(
                "email",
                "invalid_email",
                "email domain has no public suffix",
            ));
        }
        Ok(Email(candidate))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or_default()
    }

    /// The part after `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Email::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
