//! Raw lead input as a form sends it, and the field map that translates
//! other form tools' field names into ours.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Every field a form may send, as raw text, before normalization.
///
/// Build it with [`LeadInput::from_fields`] so unknown fields land in
/// `metadata` instead of being dropped.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the field names are the documented wire names (SPEC "The lead")
pub struct LeadInput {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub source: Option<String>,
    pub message: Option<String>,
    pub utm_source: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_medium: Option<String>,
    pub landing_page: Option<String>,
    pub job_title: Option<String>,
    pub website: Option<String>,
    pub country: Option<String>,
    pub industry: Option<String>,
    pub company_size: Option<String>,
    pub budget: Option<String>,
    pub timeline: Option<String>,
    pub consent_marketing: Option<String>,
    pub consent_text: Option<String>,
    /// Free JSON object from the form plus every field we do not know.
    pub metadata: Map<String, Value>,
}

/// The canonical field names of [`LeadInput`] (besides `metadata`).
pub const CANONICAL_FIELDS: [&str; 20] = [
    "email",
    "first_name",
    "last_name",
    "phone",
    "company",
    "source",
    "message",
    "utm_source",
    "utm_campaign",
    "utm_medium",
    "landing_page",
    "job_title",
    "website",
    "country",
    "industry",
    "company_size",
    "budget",
    "timeline",
    "consent_marketing",
    "consent_text",
];

impl LeadInput {
    /// Builds an input from name/value pairs (a JSON object's entries or a
    /// url-encoded form), translating names through `map`.
    ///
    /// Numbers and booleans are kept as their text; a `metadata` object is
    /// merged into `metadata`; any other unknown field is stored in
    /// `metadata` under its original name.
    ///
    /// # Example
    ///
    /// ```
    /// use lead_core::{FieldMap, LeadInput};
    /// let input = LeadInput::from_fields(
    ///     [("your-email", "a@b.com"), ("fname", "Ana"), ("favourite_color", "red")]
    ///         .map(|(k, v)| (k.to_string(), serde_json::Value::from(v))),
    ///     &FieldMap::default(),
    /// );
    /// assert_eq!(input.email.as_deref(), Some("a@b.com"));
    /// assert_eq!(input.first_name.as_deref(), Some("Ana"));
    /// assert_eq!(input.metadata["favourite_color"], "red");
    ///
    /// // Two names for one field: the last fills it, the other is kept.
    /// let input = LeadInput::from_fields(
    ///     [("email", "a@b.com"), ("Email Address", "c@d.com")]
    ///         .map(|(k, v)| (k.to_string(), serde_json::Value::from(v))),
    ///     &FieldMap::default(),
    /// );
    /// assert_eq!(input.email.as_deref(), Some("c@d.com"));
    /// assert_eq!(input.metadata["email"], "a@b.com");
    /// ```
    pub fn from_fields(fields: impl IntoIterator<Item = (String, Value)>, map: &FieldMap) -> Self {
        let mut input = LeadInput::default();
        // The form name each lead field was read from: when two names map
        // to one field (`email` and `Email Address`), the last one fills
        // it and the earlier value is kept in metadata under its own name.
        let mut read_from: HashMap<&'static str, String> = HashMap::new();
        for (name, value) in fields {
            if name == "metadata" {
                match value {
                    Value::Object(obj) => input.metadata.extend(obj),
                    Value::Null => {}
                    other => {
                        input.metadata.insert(name, other);
                    }
                }
                continue;
            }
            match map.canonical(&name) {
                Some(canonical) => match value_text(&value) {
                    Some(text) => {
                        if let Some(slot) = input.slot(canonical) {
                            if let Some(earlier) = slot.replace(text)
                                && Some(&earlier) != slot.as_ref()
                                && let Some(earlier_name) = read_from.get(canonical)
                            {
                                input
                                    .metadata
                                    .insert(earlier_name.clone(), Value::String(earlier));
                            }
                            read_from.insert(canonical, name);
                        }
                    }
                    None if value.is_null() => {}
                    // An object or array in a text field is not text; keep it rather than guess.
                    None => {
                        input.metadata.insert(name, value);
                    }
                },
                None => {
                    input.metadata.insert(name, value);
                }
            }
        }
        input
    }

    /// The value of a canonical field, to write.
    pub(crate) fn slot(&mut self, canonical: &str) -> Option<&mut Option<String>> {
        Some(match canonical {
            "email" => &mut self.email,
            "first_name" => &mut self.first_name,
            "last_name" => &mut self.last_name,
            "phone" => &mut self.phone,
            "company" => &mut self.company,
            "source" => &mut self.source,
            "message" => &mut self.message,
            "utm_source" => &mut self.utm_source,
            "utm_campaign" => &mut self.utm_campaign,
            "utm_medium" => &mut self.utm_medium,
            "landing_page" => &mut self.landing_page,
            "job_title" => &mut self.job_title,
            "website" => &mut self.website,
            "country" => &mut self.country,
            "industry" => &mut self.industry,
            "company_size" => &mut self.company_size,
            "budget" => &mut self.budget,
            "timeline" => &mut self.timeline,
            "consent_marketing" => &mut self.consent_marketing,
            "consent_text" => &mut self.consent_text,
            _ => return None,
        })
    }
}

fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Translates field names of other form tools into ours.
///
/// Names are compared after lower-casing and dropping everything but
/// letters and digits, so `Email Address`, `email-address` and
/// `EMAIL_ADDRESS` are one alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMap {
    aliases: HashMap<String, &'static str>,
}

fn alias_key(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

impl Default for FieldMap {
    /// Our own names plus the usual aliases of common form builders
    /// (Contact Form 7, HubSpot, Typeform, Gravity Forms, Mailchimp).
    fn default() -> Self {
        let mut map = FieldMap {
            aliases: HashMap::new(),
        };
        for name in CANONICAL_FIELDS {
            map.aliases.insert(alias_key(name), name);
        }
        let defaults: &[(&str, &[&str])] = &[
            (
                "email",
                &[
                    "your-email",
                    "Email Address",
                    "e-mail",
                    "mail",
                    "correo",
                    "emailaddress1",
                    "EMAIL",
                ],
            ),
            (
                "first_name",
                &[
                    "fname",
                    "firstname",
                    "your-name",
                    "given_name",
                    "nombre",
                    "FNAME",
                ],
            ),
            (
                "last_name",
                &[
                    "lname",
                    "lastname",
                    "surname",
                    "family_name",
                    "apellido",
                    "LNAME",
                ],
            ),
            (
                "phone",
                &[
                    "tel",
                    "telephone",
                    "phone_number",
                    "mobile",
                    "your-phone",
                    "telefono",
                    "mobilephone",
                ],
            ),
            (
                "company",
                &[
                    "company_name",
                    "organization",
                    "organisation",
                    "empresa",
                    "your-company",
                ],
            ),
            (
                "message",
                &[
                    "your-message",
                    "comments",
                    "comment",
                    "mensaje",
                    "notes",
                    "enquiry",
                ],
            ),
            (
                "job_title",
                &["title", "jobtitle", "position", "role", "cargo"],
            ),
            ("website", &["url", "web", "company_website", "site"]),
            (
                "company_size",
                &["employees", "numberofemployees", "num_employees", "size"],
            ),
            ("budget", &["presupuesto"]),
            ("timeline", &["timeframe", "purchase_timeline", "plazo"]),
            ("country", &["pais", "country_code"]),
            (
                "consent_marketing",
                &["consent", "gdpr", "opt_in", "marketing_consent"],
            ),
        ];
        for (canonical, aliases) in defaults {
            for alias in *aliases {
                map.aliases.insert(alias_key(alias), canonical);
            }
        }
        map
    }
}

impl FieldMap {
    /// The [`Default`] map, built once for the whole process: a capture
    /// that uses it costs a lookup per field, not building ~80 aliases.
    pub fn standard() -> &'static FieldMap {
        static STANDARD: LazyLock<FieldMap> = LazyLock::new(FieldMap::default);
        &STANDARD
    }

    /// Adds (or replaces) an alias. Fails when `canonical` is not one of
    /// [`CANONICAL_FIELDS`].
    pub fn with_alias(mut self, alias: &str, canonical: &str) -> crate::Result<Self> {
        let target = CANONICAL_FIELDS
            .iter()
            .find(|c| **c == canonical)
            .ok_or_else(|| {
                crate::Error::invalid(
                    "field_map",
                    "unknown_field",
                    format!("`{canonical}` is not a lead field"),
                )
            })?;
        self.aliases.insert(alias_key(alias), target);
        Ok(self)
    }

    /// The canonical name for a form field, if it maps to one.
    pub fn canonical(&self, name: &str) -> Option<&'static str> {
        self.aliases.get(&alias_key(name)).copied()
    }
}
