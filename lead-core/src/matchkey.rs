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
    /// Phone in E.164.
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
            phone: fields.phone.as_ref().map(|p| p.as_str().to_owned()),
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
