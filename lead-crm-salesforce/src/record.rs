//! A Salesforce Lead as a change to apply here, the one rule for the
//! pull's JSON records and the Outbound Messages' SOAP notifications, and
//! the stand-in values the push writes and must not read back.

use std::collections::BTreeMap;

use chrono::DateTime;
use lead_core::ports::CrmChange;
use lead_core::{CrmKind, CrmLink, Error, LeadExtId, Result};

use crate::config::SalesforceConfig;

/// What the push writes in a field Salesforce requires when the lead has
/// no value for it (`LastName`, `Company`).
pub(crate) const NOT_PROVIDED: &str = "[not provided]";

/// Lead fields read back as our contact fields (pushed the other way by
/// `lead_record`).
const CONTACT: [(&str, &str); 8] = [
    ("FirstName", "first_name"),
    ("LastName", "last_name"),
    ("Company", "company"),
    ("Phone", "phone"),
    ("Title", "job_title"),
    ("Website", "website"),
    ("Country", "country"),
    ("Industry", "industry"),
];

/// [`CONTACT`]'s Lead fields as a SOQL select list.
pub(crate) const CONTACT_SELECT: &str =
    "FirstName, LastName, Company, Phone, Title, Website, Country, Industry";

/// The contact fields of a Lead, leaving out what the push made up: the
/// `[not provided]` stand-ins for the required `LastName` and `Company`,
/// and a `LastName` without a `FirstName` (the push puts the first name
/// there when a lead has no last name). Empty values are absent.
fn contact_of<'a>(field: &impl Fn(&str) -> Option<&'a str>) -> BTreeMap<String, String> {
    CONTACT
        .iter()
        .filter_map(|(theirs, ours)| {
            let value = field(theirs).map(str::trim).filter(|v| !v.is_empty())?;
            let made_up =
                value == NOT_PROVIDED || (*theirs == "LastName" && field("FirstName").is_none());
            (!made_up).then(|| ((*ours).to_owned(), value.to_owned()))
        })
        .collect()
}

/// A Lead record as a change, its fields read through `field`: the pull's
/// JSON records and the Outbound Message's SOAP notifications both come
/// here, so a Lead means the same change whichever way it arrived.
///
/// `changed_at` is the newest of `SystemModstamp` and `LastModifiedDate`,
/// whichever the record has (the pull selects `SystemModstamp`, an Outbound
/// Message carries the fields its admin chose); one of them is needed,
/// since newest-change-wins cannot order a change without a time.
pub(crate) fn lead_change<'a>(
    field: impl Fn(&str) -> Option<&'a str>,
    config: &SalesforceConfig,
) -> Result<CrmChange> {
    let id = field("Id").ok_or_else(|| Error::internal("Salesforce: a Lead without an Id"))?;
    let mut changed_at = None;
    for name in ["SystemModstamp", "LastModifiedDate"] {
        let Some(stamp) = field(name) else { continue };
        let at = DateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%.f%z")
            .or_else(|_| DateTime::parse_from_rfc3339(stamp))
            .map_err(|e| Error::internal(format!("Salesforce: {name} is not a time")).caused_by(e))?
            .to_utc();
        changed_at = changed_at.max(Some(at));
    }
    let changed_at = changed_at.ok_or_else(|| {
        Error::internal("Salesforce: a Lead without SystemModstamp or LastModifiedDate")
    })?;
    Ok(CrmChange {
        link: CrmLink {
            crm: CrmKind::Salesforce,
            object: "Lead".into(),
            id: id.to_owned(),
        },
        lead: field(&config.lead_external_id).and_then(|v| LeadExtId::parse(v).ok()),
        stage: field("Status").and_then(|s| config.status_stage.get(s).copied()),
        owner: None,
        contact: contact_of(&field),
        changed_at,
    })
}
