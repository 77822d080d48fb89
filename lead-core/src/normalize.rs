//! Turning raw form input into trusted [`LeadFields`].
//!
//! Rules (SPEC "The lead"): trim everything; empty strings become absent;
//! e-mail lower-cased and syntax-checked; phone to E.164, read in the
//! lead's country when it names one, else in a configurable default
//! region; names title-cased only when written all upper or all lower
//! case; URLs parsed.
//!
//! Only the e-mail, the lead's identity, can make a submission invalid. A
//! value that does not parse as its field (a phone, a URL, a number) is
//! kept as written in a [`FieldWarning`] and the field stays empty; text
//! over [`MAX_FIELD_LEN`] is cut there with the whole value in the
//! warning; a NUL character (no store keeps one) is dropped with a
//! warning. Nothing a person typed is lost.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::LazyLock;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, FieldError, Result};
use crate::model::{
    Email, FieldWarning, LeadFields, LeadInput, Phone, RESERVED_METADATA_KEYS, Region,
};

/// Longest text we keep in a field itself; a longer value is cut here and
/// kept whole in the lead's warnings.
pub const MAX_FIELD_LEN: usize = 10_000;

/// Knobs for normalization.
#[derive(Debug, Clone, Copy, Default)]
pub struct NormalizeOptions {
    /// Region for phone numbers written without `+country` when the lead's
    /// `country` does not name one.
    pub default_region: Region,
}

/// Normalizes raw input. Values that cannot be used are kept in
/// [`LeadFields::warnings`].
///
/// # Errors
///
/// [`Error::Invalid`] only when the e-mail is missing or invalid.
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
///     phone: Some("612 345 678".into()),
///     country: Some("ES".into()),
///     website: Some("not a url".into()),
///     ..Default::default()
/// };
/// let fields = normalize(&input, &NormalizeOptions::default()).unwrap();
/// assert_eq!(fields.email.as_str(), "juan@empresa.com");
/// assert_eq!(fields.first_name.as_deref(), Some("Juan"));
/// assert_eq!(fields.last_name.as_deref(), Some("de la Peña")); // mixed case is kept
/// assert_eq!(fields.company, None);
/// assert_eq!(fields.phone.unwrap().as_str(), "+34612345678"); // read in Spain
/// assert_eq!(fields.website, None);
/// assert_eq!(fields.warnings[0].field, "website");
/// assert_eq!(fields.warnings[0].value.as_deref(), Some("not a url"));
/// ```
pub fn normalize(input: &LeadInput, options: &NormalizeOptions) -> Result<LeadFields> {
    let mut warnings: Vec<FieldWarning> = Vec::new();
    // Nearly every submission is storable as it is: the input is copied
    // only when a value must change (a NUL, text over the limit).
    let mut fixes: Vec<(&'static str, String)> = Vec::new();
    for (name, value) in text_fields(input) {
        if let Some(fixed) = value.and_then(|v| storable(name, v, &mut warnings)) {
            fixes.push((name, fixed));
        }
    }
    let fixed_input;
    let input = if fixes.is_empty() {
        input
    } else {
        let mut copy = input.clone();
        for (name, value) in fixes {
            if let Some(slot) = copy.slot(name) {
                *slot = Some(value);
            }
        }
        fixed_input = copy;
        &fixed_input
    };

    let email = match clean(&input.email) {
        // An address that held a NUL or was cut is not the address sent.
        Some(_) if warnings.iter().any(|w| w.field == "email") => {
            return Err(Error::invalid(
                "email",
                "invalid_email",
                "email is not a valid address",
            ));
        }
        Some(raw) => Email::parse(&raw)?,
        None => return Err(Error::invalid("email", "required", "email is required")),
    };
    warnings.retain(|w| w.field != "email");

    let country = clean(&input.country);
    let region = country
        .as_deref()
        .and_then(Region::of_country)
        .unwrap_or(options.default_region);
    let w = &mut warnings;
    let phone = parsed(&input.phone, w, |raw| Phone::parse(raw, region));
    let website = parsed(&input.website, w, |raw| parse_url(raw, "website"));
    let landing_page = parsed(&input.landing_page, w, |raw| parse_url(raw, "landing_page"));
    let company_size = parsed(&input.company_size, w, parse_company_size);
    let budget = parsed(&input.budget, w, parse_money);
    let consent_marketing = parsed(&input.consent_marketing, w, parse_bool);

    let mut fields = LeadFields::new(email);
    fields.first_name = clean(&input.first_name).map(|n| fix_name_case(&n));
    fields.last_name = clean(&input.last_name).map(|n| fix_name_case(&n));
    fields.phone = phone;
    fields.company = clean(&input.company);
    fields.job_title = clean(&input.job_title);
    fields.website = website;
    fields.country = country;
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
    // The merge's own bookkeeping keys are not input: a submission must
    // not pass off its own values as the lead's history. What was sent
    // is kept in a warning.
    for key in RESERVED_METADATA_KEYS {
        if let Some(sent) = fields.metadata.remove(key) {
            warnings.push(FieldWarning::kept(
                &format!("metadata.{key}"),
                "reserved_key",
                format!("metadata.{key} is kept by the server and cannot be submitted"),
                Some(sent.to_string()),
            ));
        }
    }
    fields.warnings = warnings;
    Ok(fields)
}

/// `raw` cleaned and read by `parse`; a value that does not parse is kept
/// in `warnings` and the field stays empty.
fn parsed<T>(
    raw: &Option<String>,
    warnings: &mut Vec<FieldWarning>,
    parse: impl FnOnce(&str) -> Result<T>,
) -> Option<T> {
    let raw = clean(raw)?;
    match parse(&raw) {
        Ok(value) => Some(value),
        Err(err) => {
            warnings.extend(warnings_of(err, &raw));
            None
        }
    }
}

/// The warnings of a field whose value did not parse, keeping `raw`.
fn warnings_of(err: Error, raw: &str) -> Vec<FieldWarning> {
    match err {
        Error::Invalid { fields } => fields
            .into_iter()
            .map(|f: FieldError| {
                FieldWarning::kept(&f.field, &f.code, f.message, Some(raw.to_owned()))
            })
            .collect(),
        other => vec![FieldWarning::kept(
            "unknown",
            "invalid",
            other.to_string(),
            Some(raw.to_owned()),
        )],
    }
}

/// `value` as a store can keep it, when it cannot as it is: NUL
/// characters dropped and text over [`MAX_FIELD_LEN`] cut (on a character
/// boundary, after trimming: padding must not push a value over), each
/// with a warning that keeps what was written. `None`: keep it as it is.
fn storable(name: &str, value: &str, warnings: &mut Vec<FieldWarning>) -> Option<String> {
    let trimmed = value.trim();
    if !trimmed.contains('\0') && trimmed.len() <= MAX_FIELD_LEN {
        return None;
    }
    let mut value = trimmed.to_owned();
    if value.contains('\0') {
        let written = value.replace('\0', "\u{FFFD}");
        value.retain(|c| c != '\0');
        warnings.push(FieldWarning::kept(
            name,
            "invalid_character",
            format!("{name} contained a NUL character, which was removed"),
            Some(written),
        ));
    }
    if value.len() > MAX_FIELD_LEN {
        let mut cut = MAX_FIELD_LEN;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        let written = value.clone();
        value.truncate(cut);
        warnings.push(FieldWarning::kept(
            name,
            "too_long",
            format!("{name} is longer than {MAX_FIELD_LEN} bytes: the field holds the start, this warning the whole value"),
            Some(written),
        ));
    }
    Some(value)
}

fn text_fields(input: &LeadInput) -> [(&'static str, Option<&str>); 20] {
    [
        ("email", input.email.as_deref()),
        ("first_name", input.first_name.as_deref()),
        ("last_name", input.last_name.as_deref()),
        ("phone", input.phone.as_deref()),
        ("company", input.company.as_deref()),
        ("source", input.source.as_deref()),
        ("message", input.message.as_deref()),
        ("utm_source", input.utm_source.as_deref()),
        ("utm_campaign", input.utm_campaign.as_deref()),
        ("utm_medium", input.utm_medium.as_deref()),
        ("landing_page", input.landing_page.as_deref()),
        ("job_title", input.job_title.as_deref()),
        ("website", input.website.as_deref()),
        ("country", input.country.as_deref()),
        ("industry", input.industry.as_deref()),
        ("company_size", input.company_size.as_deref()),
        ("budget", input.budget.as_deref()),
        ("timeline", input.timeline.as_deref()),
        ("consent_marketing", input.consent_marketing.as_deref()),
        ("consent_text", input.consent_text.as_deref()),
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
pub(crate) fn parse_url(raw: &str, field: &str) -> Result<String> {
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
    let number: String = raw
        .trim()
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '.' || *c == ' ')
        .collect();
    // A separator followed by exactly three digits groups thousands
    // (`1,000`, `1.000`, `1 000`); any other `.` or `,` starts a fraction
    // (`50.0` from a spreadsheet cell, `12,5`), which a head count drops.
    let mut digits = String::new();
    let mut rest = number.as_str();
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_digit() {
            digits.push(c);
            rest = &rest[1..];
            continue;
        }
        let after = &rest[1..];
        let group = after.chars().take_while(char::is_ascii_digit).count();
        if group == 3 {
            rest = after;
        } else {
            break;
        }
    }
    digits.parse::<u32>().map_err(|_| {
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

    #[test]
    fn company_sizes_drop_fractions_and_keep_thousands() {
        for (raw, size) in [
            ("50", 50),
            ("50.0", 50),
            ("12.75", 12),
            ("12,5", 12),
            ("1,000", 1000),
            ("1.000", 1000),
            ("1 000 employees", 1000),
            ("about 250", 250),
            ("50-100", 50),
        ] {
            assert_eq!(super::parse_company_size(raw).unwrap(), size, "{raw}");
        }
        assert!(super::parse_company_size("many").is_err());
    }
}
