//! Phone numbers in E.164 form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The region used to read numbers written without a `+country` prefix.
///
/// Holds an ISO 3166-1 alpha-2 code (`US`, `ES`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(phonenumber::country::Id);

impl Region {
    /// Parses an ISO 3166-1 alpha-2 region code, case-insensitively.
    pub fn parse(code: &str) -> Result<Self> {
        phonenumber::country::Id::from_str(&code.trim().to_uppercase())
            .map(Region)
            .map_err(|_| {
                Error::invalid(
                    "default_region",
                    "invalid_region",
                    format!("unknown region code `{code}`"),
                )
            })
    }
}

impl Region {
    /// The phone region a lead's `country` names: an ISO 3166-1 alpha-2 code
    /// (`ES`, `mx`) or a common English or Spanish country name.
    ///
    /// ```
    /// use lead_core::Region;
    /// assert_eq!(Region::of_country("España").map(|r| r.code().to_owned()).as_deref(), Some("ES"));
    /// assert_eq!(Region::of_country(" mx ").map(|r| r.code().to_owned()).as_deref(), Some("MX"));
    /// assert!(Region::of_country("Atlantis").is_none());
    /// ```
    pub fn of_country(country: &str) -> Option<Region> {
        // Folded: accents, case, spaces and dots do not matter (`España`, `U.S.A.`).
        let folded: String = deunicode::deunicode(country)
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let code = match folded.as_str() {
            "spain" | "espana" => "ES",
            "mexico" => "MX",
            "unitedstates" | "usa" | "unitedstatesofamerica" | "estadosunidos" => "US",
            "unitedkingdom" | "uk" | "greatbritain" | "reinounido" => "GB",
            "france" | "francia" => "FR",
            "germany" | "alemania" | "deutschland" => "DE",
            "portugal" => "PT",
            "italy" | "italia" => "IT",
            "argentina" => "AR",
            "colombia" => "CO",
            "chile" => "CL",
            "peru" => "PE",
            "brazil" | "brasil" => "BR",
            "canada" => "CA",
            "netherlands" | "paisesbajos" => "NL",
            "ireland" | "irlanda" => "IE",
            _ if folded.len() == 2 => return Self::parse(&folded).ok(),
            _ => return None,
        };
        Self::parse(code).ok()
    }

    /// The ISO 3166-1 alpha-2 code.
    pub fn code(&self) -> &str {
        self.0.as_ref()
    }
}

impl Default for Region {
    fn default() -> Self {
        Region(phonenumber::country::Id::US)
    }
}

/// A valid phone number, stored as E.164 (`+34612345678`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    /// Parses a number written in any common format; numbers without a
    /// country prefix are read in `default_region`.
    ///
    /// # Example
    ///
    /// ```
    /// use lead_core::{Phone, Region};
    /// let es = Region::parse("ES").unwrap();
    /// assert_eq!(Phone::parse("612 34 56 78", es).unwrap().as_str(), "+34612345678");
    /// assert_eq!(Phone::parse("+1 (415) 555-2671", es).unwrap().as_str(), "+14155552671");
    /// assert!(Phone::parse("12", es).is_err());
    /// ```
    pub fn parse(raw: &str, default_region: Region) -> Result<Self> {
        let raw = raw.trim();
        let invalid = || Error::invalid("phone", "invalid_phone", "phone is not a valid number");
        if raw.len() > 40 || !raw.chars().any(|c| c.is_ascii_digit()) {
            return Err(invalid());
        }
        let number = phonenumber::parse(Some(default_region.0), raw).map_err(|_| invalid())?;
        if !phonenumber::is_valid(&number) {
            return Err(invalid());
        }
        Ok(Phone(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    /// The E.164 form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.0)
    }
}

impl TryFrom<String> for Phone {
    type Error = Error;
    /// Stored numbers are already E.164, so no region is needed.
    fn try_from(value: String) -> Result<Self> {
        if !value.starts_with('+') {
            return Err(Error::invalid(
                "phone",
                "invalid_phone",
                "stored phone must be E.164",
            ));
        }
        Phone::parse(&value, Region::default())
    }
}

impl From<Phone> for String {
    fn from(value: Phone) -> Self {
        value.0
    }
}
