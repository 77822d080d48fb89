//! Keys for finding duplicates: what two records of one person share even
//! when they were typed differently.

use rphonetic::DoubleMetaphone;
use serde::{Deserialize, Serialize};

use crate::model::{Email, LeadFields};
use crate::normalize::{DomainKind, classify_domain, registrable_domain};

/// Legal-form words dropped from company names (`Acme S.L.` = `ACME Inc`).
const LEGAL_SUFFIXES: &[&str] = &[
    "inc",
    "incorporated",
    "corp",
    "corporation",
    "co",
    "company",
    "llc",
    "llp",
    "lp",
    "ltd",
    "limited",
    "plc",
    "gmbh",
    "ag",
    "kg",
    "ug",
    "sa",
    "sas",
    "sarl",
    "sl",
    "slu",
    "sau",
    "srl",
    "spa",
    "bv",
    "nv",
    "oy",
    "ab",
    "as",
    "aps",
    "kk",
    "pty",
    "pvt",
    "sc",
    "sociedad",
    "limitada",
    "anonima",
    "group",
    "holding",
    "holdings",
    "the",
];

/// The e-mail as matching sees it: lower case, `+tag` removed, and for
/// Gmail the dots removed and `googlemail.com` read as `gmail.com`.
///
/// # Example
///
/// ```
/// use lead_core::{email_match_key, Email};
/// let a = Email::parse("Ana.Lopez+news@googlemail.com").unwrap();
/// assert_eq!(email_match_key(&a), "analopez@gmail.com");
/// let b = Email::parse("ana.lopez+x@acme.com").unwrap();
/// assert_eq!(email_match_key(&b), "ana.lopez@acme.com");
/// ```
pub fn email_match_key(email: &Email) -> String {
    let local = email.local_part();
    let local = local.split_once('+').map_or(local, |(l, _)| l);
    match email.domain() {
        "gmail.com" | "googlemail.com" => format!("{}@gmail.com", local.replace('.', "")),
        domain => format!("{local}@{domain}"),
    }
}

/// ASCII, lower case, letters and digits only (`Peña-Núñez` → `penanunez`).
pub fn fold_text(text: &str) -> String {
    deunicode::deunicode(text)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A company name reduced to its distinctive words, sorted: legal forms,
/// punctuation and accents dropped (`ACME, S.L.` → `["acme"]`).
pub fn company_tokens(company: &str) -> Vec<String> {
    let ascii = deunicode::deunicode(company).to_ascii_lowercase();
    // "S.L." and "S.A." must become "sl" / "sa" before splitting.
    let joined = ascii.replace('.', "");
    let mut tokens: Vec<String> = joined
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty() && !LEGAL_SUFFIXES.contains(t))
        .map(str::to_owned)
        .collect();
    tokens.sort();
    tokens.dedup();
    tokens
}

/// Digits of a phone kept for matching: the last ones, where the
/// subscriber number is (a country code, a trunk `0` or an `00` prefix come
/// first, so the tail is comparable however the number was written).
pub const PHONE_KEY_DIGITS: usize = 9;

/// Fewest digits that count as a phone for matching (`ext. 12` is not one).
pub const PHONE_KEY_MIN_DIGITS: usize = 6;

/// The phone as matching sees it: its last [`PHONE_KEY_DIGITS`] digits,
/// from the E.164 number when the phone is valid and from the value as
/// written when it is not (a lead keeps an invalid phone as a
/// [`FieldWarning`](crate::FieldWarning), and the same digits typed twice
/// are evidence even when they are not an assigned number). `None` when
/// there is no phone or it has fewer than [`PHONE_KEY_MIN_DIGITS`] digits.
///
/// # Example
///
/// ```
/// use lead_core::{phone_key, Email, LeadFields, Phone, Region};
/// let mut valid = LeadFields::new(Email::parse("a@acme.com").unwrap());
/// valid.phone = Some(Phone::parse("+1 415 555 2671", Region::default()).unwrap());
/// assert_eq!(phone_key(&valid).as_deref(), Some("155552671"));
///
/// let mut kept = LeadFields::new(Email::parse("b@acme.com").unwrap());
/// kept.warnings.push(lead_core::FieldWarning::kept(
///     "phone", "invalid_phone", "phone is not a valid number", Some("(415) 555-2671 x".into()),
/// ));
/// assert_eq!(phone_key(&kept), phone_key(&valid));
/// ```
pub fn phone_key(fields: &LeadFields) -> Option<String> {
    let digits: Vec<u8> = fields
        .phone_text()?
        .bytes()
        .filter(u8::is_ascii_digit)
        .collect();
    if digits.len() < PHONE_KEY_MIN_DIGITS {
        return None;
    }
    let tail = digits.get(digits.len().saturating_sub(PHONE_KEY_DIGITS)..)?;
    String::from_utf8(tail.to_vec()).ok()
}

/// Double Metaphone codes (primary, alternate) of a folded name.
pub fn phonetic(name: &str) -> (String, String) {
    let result = DoubleMetaphone::default().double_metaphone(name);
    (result.primary(), result.alternate())
}

/// Everything duplicate detection compares, computed once per lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchKeys {
    /// [`email_match_key`] of the address.
    pub email: String,
    /// Registrable domain of the address (`acme.co.uk`).
    pub domain: Option<String>,
    /// What kind of domain it is.
    pub domain_kind: DomainKind,
    /// [`phone_key`]: the phone's last digits, valid number or not.
    pub phone: Option<String>,
    /// Folded first name.
    pub first_name: Option<String>,
    /// Folded last name.
    pub last_name: Option<String>,
    /// Double Metaphone of the folded last name.
    pub last_name_phonetic: Option<(String, String)>,
    /// [`company_tokens`] of the company, empty when unknown.
    pub company: Vec<String>,
}

impl MatchKeys {
    /// Computes the keys of a lead.
    ///
    /// # Example
    ///
    /// ```
    /// use lead_core::{Email, LeadFields, MatchKeys};
    /// let mut f = LeadFields::new(Email::parse("j.smith@mail.acme.co.uk").unwrap());
    /// f.last_name = Some("Smith".into());
    /// f.company = Some("ACME Ltd.".into());
    /// let k = MatchKeys::of(&f);
    /// assert_eq!(k.domain.as_deref(), Some("acme.co.uk"));
    /// assert_eq!(k.company, vec!["acme".to_string()]);
    /// assert_eq!(k.last_name_phonetic.unwrap().0, "SM0");
    /// ```
    pub fn of(fields: &LeadFields) -> Self {
        let folded = |v: &Option<String>| v.as_deref().map(fold_text).filter(|s| !s.is_empty());
        let last_name = folded(&fields.last_name);
        let domain = registrable_domain(fields.email.domain()).map(str::to_owned);
        MatchKeys {
            email: email_match_key(&fields.email),
            domain_kind: classify_domain(domain.as_deref().unwrap_or(fields.email.domain())),
            domain,
            phone: phone_key(fields),
            first_name: folded(&fields.first_name),
            last_name_phonetic: last_name.as_deref().map(phonetic),
            last_name,
            company: fields
                .company
                .as_deref()
                .map(company_tokens)
                .unwrap_or_default(),
        }
    }

    /// The corporate domain, `None` for free-mail and disposable addresses.
    pub fn corporate_domain(&self) -> Option<&str> {
        match self.domain_kind {
            DomainKind::Corporate => self.domain.as_deref(),
            _ => None,
        }
    }

    /// The company key (`acme`, `acme widgets`), `None` when unknown.
    pub fn company_key(&self) -> Option<String> {
        (!self.company.is_empty()).then(|| self.company.join(" "))
    }
}
