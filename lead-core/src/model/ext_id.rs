//! Public lead identifiers (`WEB-7KQ2M9XA`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Characters a person can read aloud and type without confusion: no `0/O`,
/// no `1/I/L`.
pub const EXT_ID_ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

const PREFIX: &str = "WEB-";
const CODE_LEN: usize = 8;

/// The public id of a lead: `WEB-` followed by 8 characters of
/// [`EXT_ID_ALPHABET`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LeadExtId(String);

impl LeadExtId {
    /// Parses an id, accepting lower case input.
    ///
    /// # Example
    ///
    /// ```
    /// use lead_core::LeadExtId;
    /// assert_eq!(LeadExtId::parse("web-7kq2m9xa").unwrap().as_str(), "WEB-7KQ2M9XA");
    /// assert!(LeadExtId::parse("WEB-0000").is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<Self> {
        let upper = raw.trim().to_ascii_uppercase();
        let valid = upper.len() == PREFIX.len() + CODE_LEN
            && upper.starts_with(PREFIX)
            && upper.as_bytes()[PREFIX.len()..]
                .iter()
                .all(|b| EXT_ID_ALPHABET.contains(b));
        if valid {
            Ok(LeadExtId(upper))
        } else {
            Err(Error::invalid(
                "lead_ext_id",
                "invalid_lead_ext_id",
                "lead_ext_id must be WEB- followed by 8 letters or digits",
            ))
        }
    }

    /// Builds an id from 64 random bits. 31^8 ≈ 8.5e11 codes, so callers
    /// still rely on the store's uniqueness check for the rare clash.
    pub fn from_random(mut bits: u64) -> Self {
        let mut s = String::with_capacity(PREFIX.len() + CODE_LEN);
        s.push_str(PREFIX);
        let n = EXT_ID_ALPHABET.len() as u64;
        for _ in 0..CODE_LEN {
            s.push(EXT_ID_ALPHABET[(bits % n) as usize] as char);
            bits /= n;
        }
        LeadExtId(s)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LeadExtId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LeadExtId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for LeadExtId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        LeadExtId::parse(&value)
    }
}

impl From<LeadExtId> for String {
    fn from(value: LeadExtId) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_always_parse_back() {
        for bits in [0, 1, u64::MAX, 0xDEAD_BEEF_CAFE_F00D] {
            let id = LeadExtId::from_random(bits);
            assert_eq!(LeadExtId::parse(id.as_str()).unwrap(), id);
        }
    }
}
