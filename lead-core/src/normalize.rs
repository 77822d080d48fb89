//! Turning raw form input into trusted [`LeadFields`].
//!
//! Rules (SPEC "The lead"): trim everything; empty strings become absent;
//! e-mail lower-cased and syntax-checked; phone to E.164 in a configurable
//! default region; names title-cased only when written all upper or all
//! lower case; URLs parsed. Every failing field is reported at once.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::LazyLock;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, FieldError, Result};
use crate::model::{Email, LeadFields, LeadInput, Phone, Region};

/// Longest text we keep in a single field; longer input is refused rather
/// than silently cut.
pub const MAX_FIELD_LEN: usize = 10_000;

/// Knobs for normalization.
#[derive(Debug, Clone, Copy, Default)]
pub struct NormalizeOptions {
    /// Region for phone numbers written without `+country`.
    pub default_region: Region,
}

/// Normalizes raw input, reporting every invalid field.
///
/// # Example
///
/// ```
/// use lead_core::{normalize, LeadInput, NormalizeOptions};
/// let input = LeadInput {
///     email: Some(" Juan@Empresa.com ".into()),
///     first_name: Some("JUAN".into()),
///     last_name: Some("de la Peña".into()),
///     company: Some("  ".into()),
///     ..Default::default()
/// };
/// let fields = normalize(&input, &NormalizeOptions::default()).unwrap();
/// assert_eq!(fields.email.as_str(), "juan@empresa.com");
/// assert_eq!(fields.first_name.as_deref(), Some("Juan"));
/// assert_eq!(fields.last_name.as_deref(), Some("de la Peña")); // mixed case is kept
/// assert_eq!(fields.company, None);
/// ```
pub fn normalize(input: &LeadInput, options: &NormalizeOptions) -> Result<LeadFields> {
    let mut errors: Vec<FieldError> = Vec::new();
    let mut collect = |r: Result<()>| {
        if let Err(Error::Invalid { fields }) = r {
            errors.extend(fields);
        }
    };

    for (name, value) in text_fields(input) {
        if value.is_some_and(|v| v.len() > MAX_FIELD_LEN) {
            collect(Err(Error::invalid(
                name,
                "too_long",
                format!("{name} is longer than {MAX_FIELD_LEN} bytes"),
            )));
        }
        if let Some(value) = value {
            collect(check_text(name, value));
        }
    }

    let email = match clean(&input.email) {
        Some(raw) => Email::parse(&raw).map_err(|e| {
            collect(Err(e));
        }),
        None => {
            collect(Err(Error::invalid(
                "email",
                "required",
                "email is required",
            )));
            Err(())
        }
    };
    let phone =
        clean(&input.phone).and_then(|raw| match Phone::parse(&raw, options.default_region) {
            Ok(p) => Some(p),
            Err(e) => {
                collect(Err(e));
                None
            }
        });
    let website = clean(&input.website).and_then(|raw| match parse_url(&raw, "website") {
        Ok(u) => Some(u),
        Err(e) => {
            collect(Err(e));
            None
        }
    });
    let landing_page =
        clean(&input.landing_page).and_then(|raw| match parse_url(&raw, "landing_page") {
            Ok(u) => Some(u),
            Err(e) => {
                collect(Err(e));
                None
            }
        });
    let company_size = clean(&input.company_size).and_then(|raw| match parse_company_size(&raw) {
        Ok(n) => Some(n),
        Err(e) => {
            collect(Err(e));
            None
        }
    });
    let budget = clean(&input.budget).and_then(|raw| match parse_money(&raw) {
        Ok(n) => Some(n),
        Err(e) => {
            collect(Err(e));
            None
        }
    });
    let consent_marketing =
        clean(&input.consent_marketing).and_then(|raw| match parse_bool(&raw) {
            Ok(b) => Some(b),
            Err(e) => {
                collect(Err(e));
                None
            }
        });

    // A field refused for a NUL is named once: its own parse error (an
    // e-mail or phone that cannot hold one) would only repeat it.
    let refused: Vec<String> = errors
        .iter()
        .filter(|e| e.code == "invalid_character")
        .map(|e| e.field.clone())
        .collect();
    errors.retain(|e| e.code == "invalid_character" || !refused.contains(&e.field));
    let (Ok(email), true) = (email, errors.is_empty()) else {
        return Err(Error::Invalid { fields: errors });
    };
    let mut fields = LeadFields::new(email);
    fields.first_name = clean(&input.first_name).map(|n| fix_name_case(&n));
    fields.last_name = clean(&input.last_name).map(|n| fix_name_case(&n));
    fields.phone = phone;
    fields.company = clean(&input.company);
    fields.job_title = clean(&input.job_title);
    fields.website = website;
    fields.country = clean(&input.country);
    fields.industry = clean(&input.industry).map(|i| i.to_lowercase());
    fields.company_size = company_size;
    fields.budget = budget;
    fields.timeline = clean(&input.timeline);
    fields.source = clean(&input.source);
    fields.message = clean(&input.message);
    fields.utm_source = clean(&input.utm_source);
    fields.utm_campaign = clean(&input.utm_campaign);
    fields.utm_medium = clean(&input.utm_medium);
    fields.landing_page = landing_page;
    fields.consent_marketing = consent_marketing;
    fields.consent_text = clean(&input.consent_text);
    fields.metadata = input.metadata.clone();
    Ok(fields)
}

fn text_fields(input: &LeadInput) -> [(&'static str, Option<&String>); 20] {
    [
        ("email", input.email.as_ref()),
        ("first_name", input.first_name.as_ref()),
        ("last_name", input.last_name.as_ref()),
        ("phone", input.phone.as_ref()),
        ("company", input.company.as_ref()),
        ("source", input.source.as_ref()),
        ("message", input.message.as_ref()),
        ("utm_source", input.utm_source.as_ref()),
        ("utm_campaign", input.utm_campaign.as_ref()),
        ("utm_medium", input.utm_medium.as_ref()),
        ("landing_page", input.landing_page.as_ref()),
        ("job_title", input.job_title.as_ref()),
        ("website", input.website.as_ref()),
        ("country", input.country.as_ref()),
        ("industry", input.industry.as_ref()),
        ("company_size", input.company_size.as_ref()),
        ("budget", input.budget.as_ref()),
        ("timeline", input.timeline.as_ref()),
        ("consent_marketing", input.consent_marketing.as_ref()),
        ("consent_text", input.consent_text.as_ref()),
    ]
}

/// Refuses text no store can keep: the NUL character (PostgreSQL's text
/// types reject it; no form has a reason to send it). Every free-text
/// value that reaches a store column goes through here, so the answer is
/// a validation error naming `field`, never a failed write.
pub fn check_text(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::invalid(
            field,
            "invalid_character",
            format!("{field} contains a NUL character"),
        ));
    }
    Ok(())
}

/// Trims and turns empty into `None`.
fn clean(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Title-cases names typed ALL UPPER or all lower; leaves mixed case alone
/// (`McDonald`, `de la Peña` are already deliberate).
pub fn fix_name_case(name: &str) -> String {
    let has_lower = name.chars().any(char::is_lowercase);
    let has_upper = name.chars().any(char::is_uppercase);
    if has_lower && has_upper {
        return name.to_owned();
    }
    let mut out = String::with_capacity(name.len());
    let mut start_of_word = true;
    for c in name.chars() {
        if start_of_word {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start_of_word = c.is_whitespace() || c == '-' || c == '\'';
    }
    out
}

/// Accepts `https://x.com/p`, `http://…` and bare hosts (`x.com/p`, made
/// `https://`). Returns the URL with a lower-cased scheme and host.
fn parse_url(raw: &str, field: &str) -> Result<String> {
    let invalid = || Error::invalid(field, "invalid_url", format!("{field} is not a valid URL"));
    let (scheme, rest) = match raw.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => ("https".to_owned(), raw),
    };
    if scheme != "http" && scheme != "https" {
        return Err(invalid());
    }
    let (host, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host_no_port = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let valid_host = !host_no_port.is_empty()
        && host_no_port.contains('.')
        && host_no_port.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if !valid_host || path.chars().any(char::is_whitespace) {
        return Err(invalid());
    }
    Ok(format!("{scheme}://{}{path}", host.to_lowercase()))
}

/// `250`, `1,000`, `1000+`, `100-499` (the lower bound) → employees.
fn parse_company_size(raw: &str) -> Result<u32> {
    let first: String = raw
        .trim()
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '.' || *c == ' ')
        .filter(char::is_ascii_digit)
        .collect();
    first.parse::<u32>().map_err(|_| {
        Error::invalid(
            "company_size",
            "invalid_number",
            "company_size must be a number of employees",
        )
    })
}

/// `5000`, `5,000.50`, `$5000`, `5000 EUR`, `5k` → amount.
fn parse_money(raw: &str) -> Result<Decimal> {
    let invalid = || {
        Error::invalid(
            "budget",
            "invalid_amount",
            "budget must be an amount of money",
        )
    };
    let lower = raw.trim().to_lowercase();
    let (body, factor) = match lower
        .trim_end_matches(|c: char| c.is_alphabetic() && c != 'k' && c != 'm')
        .trim()
    {
        b if b.ends_with('k') => (b.trim_end_matches('k').to_owned(), Decimal::from(1_000)),
        b if b.ends_with('m') => (b.trim_end_matches('m').to_owned(), Decimal::from(1_000_000)),
        b => (b.to_owned(), Decimal::ONE),
    };
    let digits: String = body
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    if digits.is_empty() {
        return Err(invalid());
    }
    let amount = Decimal::from_str(&digits).map_err(|_| invalid())?;
    let value = amount.checked_mul(factor).ok_or_else(invalid)?;
    if value.is_sign_negative() {
        Err(invalid())
    } else {
        Ok(value)
    }
}

fn parse_bool(raw: &str) -> Result<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "si" | "sí" | "y" => Ok(true),
        "false" | "0" | "no" | "off" | "n" => Ok(false),
        _ => Err(Error::invalid(
            "consent_marketing",
            "invalid_bool",
            "consent_marketing must be true or false",
        )),
    }
}

/// How an e-mail domain is classified for matching and scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainKind {
    /// A company's own domain.
    Corporate,
    /// A consumer mailbox provider (gmail.com, outlook.com, ...).
    FreeMail,
    /// A throw-away mailbox provider.
    Disposable,
}

/// Consumer mailbox providers; a shared domain says nothing about the company.
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.es",
    "yahoo.co.uk",
    "yahoo.fr",
    "ymail.com",
    "hotmail.com",
    "hotmail.es",
    "hotmail.co.uk",
    "hotmail.fr",
    "outlook.com",
    "outlook.es",
    "live.com",
    "msn.com",
    "aol.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "proton.me",
    "protonmail.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.com",
    "yandex.ru",
    "yandex.com",
    "zoho.com",
    "qq.com",
    "163.com",
    "126.com",
    "fastmail.com",
    "hey.com",
    "tutanota.com",
    "orange.fr",
    "free.fr",
    "t-online.de",
    "libero.it",
    "terra.com.br",
    "uol.com.br",
    "rediffmail.com",
    "naver.com",
];

/// Classifies an e-mail domain.
///
/// # Example
///
/// ```
/// use lead_core::{classify_domain, DomainKind};
/// assert_eq!(classify_domain("gmail.com"), DomainKind::FreeMail);
/// assert_eq!(classify_domain("mailinator.com"), DomainKind::Disposable);
/// assert_eq!(classify_domain("acme.io"), DomainKind::Corporate);
/// ```
pub fn classify_domain(domain: &str) -> DomainKind {
    // mailchecker's own check scans its ~56k domains one by one; a set
    // built once makes this a few hash lookups (one per parent domain).
    static DISPOSABLE: LazyLock<HashSet<&'static str>> =
        LazyLock::new(|| mailchecker::blacklist().into_iter().collect());
    let domain = domain.trim_end_matches('.');
    if FREE_MAIL.contains(&domain) {
        return DomainKind::FreeMail;
    }
    // `ok.33mail.com` is as disposable as `33mail.com`.
    let mut suffix = domain;
    loop {
        if DISPOSABLE.contains(suffix) {
            return DomainKind::Disposable;
        }
        match suffix.split_once('.') {
            Some((_, rest)) if rest.contains('.') => suffix = rest,
            _ => return DomainKind::Corporate,
        }
    }
}

/// The registrable domain (`mail.eu.acme.co.uk` → `acme.co.uk`), by the
/// Public Suffix List.
pub fn registrable_domain(host: &str) -> Option<&str> {
    psl::domain_str(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains_of_disposable_domains_are_disposable() {
        assert_eq!(classify_domain("ok.33mail.com"), DomainKind::Disposable);
        assert_eq!(classify_domain("mail.acme.co.uk"), DomainKind::Corporate);
        // Agrees with mailchecker's own (slow) check.
        for domain in [
            "guerrillamailblock.com",
            "33mail.com",
            "example.org",
            "yopmail.com",
        ] {
            let expected = mailchecker::is_valid(&format!("probe@{domain}"));
            assert_eq!(
                classify_domain(domain) != DomainKind::Disposable,
                expected,
                "{domain}"
            );
        }
    }
}
