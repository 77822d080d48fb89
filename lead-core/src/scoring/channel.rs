//! The marketing channel a lead came through, derived from `source`,
//! `utm_medium` and `utm_source`.

use serde::{Deserialize, Serialize};

use crate::model::LeadFields;

/// Where a lead's visit came from, as marketing counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Paid ads (`cpc`, `ppc`, `paid`, `display`, ads).
    Paid,
    /// Social networks (facebook, linkedin, `social`).
    Social,
    /// Search engines, unpaid (`organic`, `seo`).
    Organic,
    /// Typed or bookmarked (`direct`, `web`, no referrer).
    Direct,
    /// A link on another site (`referral`).
    Referral,
    /// Anything else.
    Unknown,
}

impl Channel {
    /// The lower-case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Paid => "paid",
            Channel::Social => "social",
            Channel::Organic => "organic",
            Channel::Direct => "direct",
            Channel::Referral => "referral",
            Channel::Unknown => "unknown",
        }
    }
}

const PAID: &[&str] = &[
    "cpc",
    "ppc",
    "paid",
    "display",
    "ads",
    "ad",
    "adwords",
    "cpm",
    "cpa",
    "banner",
    "sem",
    "paidsearch",
    "paidsocial",
];
const SOCIAL: &[&str] = &[
    "social",
    "facebook",
    "fb",
    "linkedin",
    "instagram",
    "twitter",
    "tiktok",
    "socialmedia",
    "sm",
];
const ORGANIC: &[&str] = &["organic", "seo"];
const DIRECT: &[&str] = &["direct", "web", "website", "none"];
const REFERRAL: &[&str] = &["referral", "referer", "referrer"];

/// Classifies one value by its words (`paid_social` → paid, `google / cpc` → paid).
fn classify(value: &str) -> Channel {
    let words = || {
        value
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
    };
    // Compared without allocating: this runs for every lead scored.
    let has = |set: &[&str]| {
        words().any(|w| set.iter().any(|s| s.eq_ignore_ascii_case(w)))
            || set.iter().any(|s| s.eq_ignore_ascii_case(value))
    };
    // Paid wins over social: `paid_social` and `facebook / cpc` are ads.
    if has(PAID) {
        Channel::Paid
    } else if has(SOCIAL) {
        Channel::Social
    } else if has(ORGANIC) {
        Channel::Organic
    } else if has(REFERRAL) {
        Channel::Referral
    } else if has(DIRECT) {
        Channel::Direct
    } else {
        Channel::Unknown
    }
}

/// Derives the channel.
///
/// `utm_medium` is read first (it names the medium exactly), then `source`,
/// then `utm_source`; the first one that says something known decides.
/// When none of them is given, a `referrer` in metadata makes it a
/// referral, and no referrer at all makes it direct (as web analytics
/// count it). Values given but not recognised give [`Channel::Unknown`].
///
/// # Example
///
/// ```
/// use lead_core::{channel_of, Channel, Email, LeadFields};
/// let mut f = LeadFields::new(Email::parse("a@b.com").unwrap());
/// assert_eq!(channel_of(&f), Channel::Direct);
/// f.source = Some("web".into());
/// f.utm_medium = Some("cpc".into());
/// assert_eq!(channel_of(&f), Channel::Paid);
/// ```
pub fn channel_of(fields: &LeadFields) -> Channel {
    let given: Vec<&str> = [&fields.utm_medium, &fields.source, &fields.utm_source]
        .into_iter()
        .filter_map(|v| v.as_deref())
        .collect();
    if given.is_empty() {
        let referrer = fields
            .metadata
            .get("referrer")
            .and_then(|v| v.as_str())
            .map(str::trim)
            .unwrap_or_default();
        return if referrer.is_empty() {
            Channel::Direct
        } else {
            Channel::Referral
        };
    }
    given
        .into_iter()
        .map(classify)
        .find(|c| *c != Channel::Unknown)
        .unwrap_or(Channel::Unknown)
}
