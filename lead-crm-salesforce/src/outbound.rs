//! Salesforce Outbound Messages (`../shared/crm-specs/CONTRACTS.md` §1.9):
//! the SOAP notifications an org posts when a workflow or flow fires, read
//! into plain values, and the answers the receiver sends back.
//!
//! Pure: no I/O. The HTTP route (`POST /webhook/crm/salesforce`) limits the
//! body size, calls [`parse`], checks [`OutboundMessage::org_matches`],
//! stores each notification under its [`Notification::id`] (delivery is
//! at-least-once and out of order) and answers [`ACK`], or [`fault`].
//!
//! Elements are matched on their local names: the prefixes (`soapenv`,
//! `soap`, `sf`, none) differ between orgs and tools, and no two elements
//! of an Outbound Message share a local name where they could be confused.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use lead_core::ports::CrmChange;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::config::SalesforceConfig;

/// Most notifications in one message: Salesforce sends 1 to 100, so more
/// is not Salesforce.
pub const MAX_NOTIFICATIONS: usize = 100;

/// Deepest element nesting read. A message is six levels deep; the limit
/// keeps a hostile body from growing the path without end.
const MAX_DEPTH: usize = 32;

/// The answer Salesforce needs to count a message delivered, byte for byte
/// the recorded one
/// (`tests/fixtures/outbound-message/notifications-ack-response.xml`).
/// Anything else, a 200 without it included, makes Salesforce send the
/// message again (for up to 24 h).
pub const ACK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Body>
  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">
   <Ack>true</Ack>
  </notificationsResponse>
 </soapenv:Body>
</soapenv:Envelope>
"#;

/// The content type of [`ACK`] and [`fault`]: SOAP 1.1 is `text/xml`.
pub const ACK_CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// One Outbound Message: the org that sent it and its notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    /// The sending org's id (18 characters as sent); check it with
    /// [`OutboundMessage::org_matches`] before trusting anything else.
    pub organization_id: String,
    /// The outbound message action that fired (`04k…`), when sent.
    pub action_id: Option<String>,
    /// The notifications, in the message's order (1 to
    /// [`MAX_NOTIFICATIONS`]).
    pub notifications: Vec<Notification>,
}

/// One record change in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The notification's `Id` (`04l…`): the idempotency key, since a
    /// message can arrive more than once.
    pub id: String,
    /// The record's object, from `xsi:type` without its prefix (`sf:Lead`
    /// is `Lead`).
    pub object_type: String,
    /// The record's `Id` (`00Q…` for a Lead).
    pub record_id: String,
    /// Every field sent, `Id` included, by local name, with its text as
    /// sent. Salesforce sends only the non-null fields the admin selected;
    /// an `xsi:nil` one is left out too, so absent means null.
    pub fields: BTreeMap<String, String>,
}

/// Why a body is not an Outbound Message we read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// Not well-formed XML (or not UTF-8), with the parser's reason.
    #[error("not well-formed XML: {0}")]
    Xml(String),
    /// A `<!DOCTYPE`: Salesforce sends none, and a DTD is how entity
    /// expansion attacks (XXE, billion laughs) get in, so none is read.
    #[error("a DOCTYPE is refused")]
    Doctype,
    /// Elements nested deeper than any Outbound Message is.
    #[error("elements nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// More notifications than Salesforce ever puts in one message.
    #[error("more than {MAX_NOTIFICATIONS} Notifications in one message")]
    TooManyNotifications,
    /// Something a message must have is missing; the text names it
    /// ("OrganizationId missing", "Notification without Id").
    #[error("{0}")]
    Missing(&'static str),
}

impl OutboundMessage {
    /// Whether the message comes from the org `expected` names. Org ids
    /// come as 15 case-sensitive characters or those 15 plus a 3-character
    /// case-safe suffix, so the first 15 are compared; an id of another
    /// length (an empty setting included) never matches.
    pub fn org_matches(&self, expected: &str) -> bool {
        fn key(id: &str) -> Option<&str> {
            let valid =
                matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric());
            valid.then(|| &id[..15])
        }
        matches!((key(&self.organization_id), key(expected)), (Some(a), Some(b)) if a == b)
    }
}

/// The change a Lead notification makes: the same [`CrmChange`] the pull
/// builds for the record (one rule, `record::lead_change`), with `changed_at`
/// the newest of `LastModifiedDate` and `SystemModstamp`.
///
/// A notification without either (the original system's setup selects
/// only `Id`, `Email` and `Status`) counts as changed at `received_at`:
/// Outbound Messages leave within seconds of the change, so that orders
/// it well enough against local edits; select `LastModifiedDate` among
/// the message's fields for the exact time. `None` for another object.
pub fn lead_change(
    n: &Notification,
    config: &SalesforceConfig,
    received_at: DateTime<Utc>,
) -> Option<CrmChange> {
    if n.object_type != "Lead" {
        return None;
    }
    let timed = ["LastModifiedDate", "SystemModstamp"]
        .iter()
        .any(|f| n.fields.contains_key(*f));
    let received = received_at.to_rfc3339_opts(SecondsFormat::Millis, true);
    let field = |name: &str| match name {
        "Id" => Some(n.record_id.as_str()),
        "LastModifiedDate" if !timed => Some(received.as_str()),
        _ => n.fields.get(name).map(String::as_str),
    };
    crate::record::lead_change(field, config).ok()
}

/// A SOAP 1.1 Fault with faultcode `soapenv:Client` (the message is at
/// fault, sending it again will not help) and `message`, XML-escaped, as
/// its faultstring. SOAP 1.1 answers a fault with HTTP 500 and
/// [`ACK_CONTENT_TYPE`]; Salesforce retries it like any failure.
pub fn fault(message: &str) -> String {
    // Characters XML 1.0 cannot carry at all, escaped or not.
    let message: String = message
        .chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Body>
  <soapenv:Fault>
   <faultcode>soapenv:Client</faultcode>
   <faultstring>{}</faultstring>
  </soapenv:Fault>
 </soapenv:Body>
</soapenv:Envelope>
"#,
        quick_xml::escape::escape(message.as_str())
    )
}

/// Reads an Outbound Message from a request body.
///
/// Reads UTF-8 only (what Salesforce sends), refuses any `DOCTYPE`, and
/// expands only the five predefined entities and character references.
/// Elements other than the message's own (a SOAP `Header`, extra
/// top-level elements such as `SessionId` or `EnterpriseUrl`) are skipped.
pub fn parse(body: &[u8]) -> Result<OutboundMessage, OutboundError> {
    let mut reader = Reader::from_reader(body);
    // `<a/>` comes as a start and an end, so both forms take one path.
    reader.config_mut().expand_empty_elements = true;

    let mut open: Vec<Open> = Vec::new();
    let mut text = String::new();
    let mut root_seen = false;
    let mut found = Found::default();

    loop {
        let event = reader.read_event().map_err(xml)?;
        match event {
            Event::Start(start) => {
                if open.is_empty() && root_seen {
                    return Err(OutboundError::Xml("content after the root element".into()));
                }
                root_seen = true;
                if open.len() == MAX_DEPTH {
                    return Err(OutboundError::TooDeep);
                }
                if let Some(parent) = open.last_mut() {
                    parent.has_children = true;
                }
                let element = Open::of(&start)?;
                let names: Vec<&str> = open.iter().map(|o| o.name.as_str()).collect();
                found.start(&names, &element)?;
                open.push(element);
                text.clear();
            }
            Event::End(_) => {
                // quick-xml has checked that the end tag matches its start.
                let Some(element) = open.pop() else {
                    return Err(OutboundError::Xml("an end tag without a start".into()));
                };
                let names: Vec<&str> = open.iter().map(|o| o.name.as_str()).collect();
                found.end(&names, element, &text)?;
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml10_content().map_err(xml)?),
            Event::CData(c) => text.push_str(&c.xml10_content().map_err(xml)?),
            Event::GeneralRef(r) => match r.resolve_char_ref().map_err(xml)? {
                Some(c) => text.push(c),
                None => {
                    let name = r.decode().map_err(xml)?;
                    let Some(value) = quick_xml::escape::resolve_predefined_entity(&name) else {
                        return Err(OutboundError::Xml(format!("unknown entity &{name};")));
                    };
                    text.push_str(value);
                }
            },
            Event::DocType(_) => return Err(OutboundError::Doctype),
            Event::Empty(_) | Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !root_seen {
        return Err(OutboundError::Missing(
            "XML missing: the body has no element",
        ));
    }
    if let Some(element) = open.last() {
        return Err(OutboundError::Xml(format!(
            "the body ends inside <{}>",
            element.name
        )));
    }
    found.finish()
}

/// An element being read.
struct Open {
    /// Local name.
    name: String,
    /// `xsi:nil="true"`.
    nil: bool,
    /// Whether it holds elements (then it is no field value).
    has_children: bool,
    /// `xsi:type`, when given.
    xsi_type: Option<String>,
}

impl Open {
    fn of(start: &BytesStart<'_>) -> Result<Open, OutboundError> {
        let name = std::str::from_utf8(start.local_name().as_ref())
            .map_err(xml)?
            .to_owned();
        let mut nil = false;
        let mut xsi_type = None;
        for attribute in start.attributes() {
            let attribute = attribute.map_err(xml)?;
            let value = || {
                attribute
                    .decoded_and_normalized_value(
                        quick_xml::XmlVersion::Implicit1_0,
                        start.decoder(),
                    )
                    .map_err(xml)
            };
            match attribute.key.local_name().as_ref() {
                b"nil" => nil = matches!(value()?.trim(), "true" | "1"),
                b"type" => xsi_type = Some(value()?.into_owned()),
                _ => {}
            }
        }
        Ok(Open {
            name,
            nil,
            has_children: false,
            xsi_type,
        })
    }
}

/// What the message has told so far.
#[derive(Default)]
struct Found {
    notifications_seen: bool,
    organization_id: Option<String>,
    action_id: Option<String>,
    notifications: Vec<Notification>,
    /// The notification being read: its id, its `sObject`'s type (if it
    /// had an `sObject`) and fields.
    current: Option<Partial>,
}

#[derive(Default)]
struct Partial {
    id: Option<String>,
    sobject: Option<Option<String>>,
    fields: BTreeMap<String, String>,
}

/// Where an element sits, by its ancestors' local names.
fn is_at(ancestors: &[&str], path: &[&str]) -> bool {
    ancestors.len() == path.len() + 1
        && ancestors[1..] == *path
        && ancestors.first() == Some(&"Envelope")
}

const NOTIFICATIONS: [&str; 2] = ["Body", "notifications"];
const NOTIFICATION: [&str; 3] = ["Body", "notifications", "Notification"];
const SOBJECT: [&str; 4] = ["Body", "notifications", "Notification", "sObject"];

impl Found {
    fn start(&mut self, ancestors: &[&str], element: &Open) -> Result<(), OutboundError> {
        if ancestors.is_empty() && element.name != "Envelope" {
            return Err(OutboundError::Missing(
                "SOAP Envelope missing: the root element is not an Envelope",
            ));
        }
        if is_at(ancestors, &["Body"]) && element.name == "notifications" {
            if self.notifications_seen {
                return Err(OutboundError::Xml(
                    "more than one notifications element".into(),
                ));
            }
            self.notifications_seen = true;
        } else if is_at(ancestors, &NOTIFICATIONS) && element.name == "Notification" {
            if self.notifications.len() == MAX_NOTIFICATIONS {
                return Err(OutboundError::TooManyNotifications);
            }
            self.current = Some(Partial::default());
        } else if is_at(ancestors, &NOTIFICATION)
            && element.name == "sObject"
            && let Some(current) = &mut self.current
        {
            // `sf:Lead` is `Lead`: the prefix is the sender's choice.
            let object = element.xsi_type.as_deref().map(|t| {
                t.rsplit_once(':')
                    .map_or(t, |(_, local)| local)
                    .trim()
                    .to_owned()
            });
            current.sobject = Some(object.filter(|o| !o.is_empty()));
        }
        Ok(())
    }

    fn end(&mut self, ancestors: &[&str], element: Open, text: &str) -> Result<(), OutboundError> {
        let value = || (!element.nil && !element.has_children).then(|| text.to_owned());
        let id = || {
            value()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if is_at(ancestors, &NOTIFICATIONS) {
            match element.name.as_str() {
                "OrganizationId" => self.organization_id = id(),
                "ActionId" => self.action_id = id(),
                "Notification" => {
                    let current = self.current.take().unwrap_or_default();
                    self.notifications.push(current.finish()?);
                }
                _ => {}
            }
        } else if is_at(ancestors, &NOTIFICATION)
            && element.name == "Id"
            && let Some(current) = &mut self.current
        {
            current.id = id();
        } else if is_at(ancestors, &SOBJECT)
            && let (Some(current), Some(value)) = (&mut self.current, value())
        {
            current.fields.insert(element.name, value);
        }
        Ok(())
    }

    fn finish(self) -> Result<OutboundMessage, OutboundError> {
        if !self.notifications_seen {
            return Err(OutboundError::Missing(
                "notifications missing: the SOAP Body holds no Outbound Message",
            ));
        }
        let organization_id = self
            .organization_id
            .ok_or(OutboundError::Missing("OrganizationId missing"))?;
        if self.notifications.is_empty() {
            return Err(OutboundError::Missing("no Notification in the message"));
        }
        Ok(OutboundMessage {
            organization_id,
            action_id: self.action_id,
            notifications: self.notifications,
        })
    }
}

impl Partial {
    fn finish(self) -> Result<Notification, OutboundError> {
        let id = self
            .id
            .ok_or(OutboundError::Missing("Notification without Id"))?;
        let object_type = self
            .sobject
            .ok_or(OutboundError::Missing("Notification without sObject"))?
            .ok_or(OutboundError::Missing("sObject without xsi:type"))?;
        let record_id = self
            .fields
            .get("Id")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or(OutboundError::Missing("sObject without Id"))?;
        Ok(Notification {
            id,
            object_type,
            record_id,
            fields: self.fields,
        })
    }
}

fn xml(error: impl std::fmt::Display) -> OutboundError {
    OutboundError::Xml(error.to_string())
}

#[cfg(test)]
mod tests {
    use lead_core::{CrmKind, Stage};

    use super::*;
    use crate::config::Flow;

    const SAMPLE: &str =
        include_str!("../tests/fixtures/outbound-message/notifications-lead-sample.xml");
    const ACK_FIXTURE: &str =
        include_str!("../tests/fixtures/outbound-message/notifications-ack-response.xml");

    fn config() -> SalesforceConfig {
        SalesforceConfig::new(
            "https://login.example",
            Flow::ClientCredentials {
                client_id: "id".into(),
                client_secret: "secret".to_owned().into(),
            },
        )
    }

    fn message(organization_id: &str) -> OutboundMessage {
        OutboundMessage {
            organization_id: organization_id.into(),
            action_id: None,
            notifications: Vec::new(),
        }
    }

    /// A message with `notifications` copies of one notification.
    fn with_notifications(count: usize) -> String {
        let one = "<Notification><Id>04l</Id>\
                   <sObject xsi:type=\"sf:Lead\"><sf:Id>00Q</sf:Id></sObject></Notification>";
        format!(
            "<soap:Envelope><soap:Body><notifications>\
             <OrganizationId>00D5w000004qGTOEA2</OrganizationId>{}\
             </notifications></soap:Body></soap:Envelope>",
            one.repeat(count)
        )
    }

    #[test]
    fn the_fixture_parses_to_its_two_notifications() {
        let message = parse(SAMPLE.as_bytes()).expect("the fixture parses");

        assert_eq!(message.organization_id, "00D5w000004qGTOEA2");
        assert_eq!(message.action_id.as_deref(), Some("04k5w000000TSwMAAW"));
        let [first, second] = message.notifications.as_slice() else {
            panic!("two notifications, got {:?}", message.notifications);
        };
        assert_eq!(first.id, "04l5w00005286hAAAQ");
        assert_eq!(first.object_type, "Lead");
        assert_eq!(first.record_id, "00Q5w00001ABCdeEAF");
        assert_eq!(first.fields["Email"], "jane.doe@acme.example");
        assert_eq!(first.fields["Status"], "Working - Contacted");
        assert_eq!(first.fields["Web_Lead_Id__c"], "wl_01HZX3Q8R4");
        assert_eq!(first.fields["Id"], "00Q5w00001ABCdeEAF");
        assert_eq!(first.fields.len(), 9);
        assert_eq!(second.id, "04l5w00005286hBAAQ");
        assert_eq!(second.record_id, "00Q5w00001ABCdfEAF");
        assert_eq!(second.fields["Status"], "Closed - Converted");
        assert!(!second.fields.contains_key("Email"));
    }

    #[test]
    fn other_prefixes_entities_and_nil_fields_read_the_same() {
        let body = r#"<?xml version="1.0"?>
            <soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
                xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
             <soap:Header/>
             <soap:Body>
              <o:notifications xmlns:o="http://soap.sforce.com/2005/09/outbound">
               <o:OrganizationId>00D5w000004qGTO</o:OrganizationId>
               <o:SessionId i:nil="true"/>
               <o:Notification>
                <o:Id>04l1</o:Id>
                <o:sObject i:type="Lead" xmlns="urn:sobject.enterprise.soap.sforce.com">
                 <Id>00Q1</Id>
                 <Company>Smith &amp; Sons &#x263A;</Company>
                 <Description><![CDATA[<b>bold</b>]]></Description>
                 <Phone i:nil="true"/>
                 <Title></Title>
                </o:sObject>
               </o:Notification>
              </o:notifications>
             </soap:Body>
            </soap:Envelope>"#;

        let message = parse(body.as_bytes()).expect("parses");

        assert_eq!(message.organization_id, "00D5w000004qGTO");
        assert_eq!(message.action_id, None);
        let n = &message.notifications[0];
        assert_eq!(n.object_type, "Lead");
        assert_eq!(n.fields["Company"], "Smith & Sons \u{263A}");
        assert_eq!(n.fields["Description"], "<b>bold</b>");
        assert_eq!(n.fields["Title"], "");
        assert!(!n.fields.contains_key("Phone"));
    }

    #[test]
    fn lead_change_reads_the_lead_the_status_and_the_time() {
        let message = parse(SAMPLE.as_bytes()).expect("the fixture parses");
        let config = config();

        let first =
            lead_change(&message.notifications[0], &config, Utc::now()).expect("a Lead change");
        let second =
            lead_change(&message.notifications[1], &config, Utc::now()).expect("a Lead change");

        assert_eq!(first.link.crm, CrmKind::Salesforce);
        assert_eq!(first.link.object, "Lead");
        assert_eq!(first.link.id, "00Q5w00001ABCdeEAF");
        assert_eq!(first.stage, None, "Working - Contacted maps to no stage");
        assert_eq!(first.owner, None);
        assert_eq!(first.changed_at.to_rfc3339(), "2026-05-15T18:00:00+00:00");
        assert_eq!(second.lead, None);
        assert_eq!(second.stage, Some(Stage::Won), "Closed - Converted is Won");
    }

    #[test]
    fn lead_change_reads_our_id_only_when_it_is_one_of_ours() {
        let message = parse(SAMPLE.as_bytes()).expect("the fixture parses");
        let mut n = message.notifications[0].clone();
        let config = config();

        // The fixture's `wl_01HZX3Q8R4` is not a `WEB-` id: the pull reads
        // such a value as no lead of ours, and so does this.
        assert_eq!(n.fields["Web_Lead_Id__c"], "wl_01HZX3Q8R4");
        assert_eq!(
            lead_change(&n, &config, Utc::now()).and_then(|c| c.lead),
            None
        );

        n.fields
            .insert("Web_Lead_Id__c".into(), "web-7kq2m9xa".into());
        let lead = lead_change(&n, &config, Utc::now()).and_then(|c| c.lead);
        assert_eq!(lead.as_ref().map(|l| l.as_str()), Some("WEB-7KQ2M9XA"));
    }

    #[test]
    fn lead_change_takes_the_newest_stamp_and_skips_what_it_cannot_order() {
        let mut n = parse(SAMPLE.as_bytes()).expect("parses").notifications[0].clone();
        let config = config();
        n.fields
            .insert("SystemModstamp".into(), "2026-05-15T18:00:07.000Z".into());
        let change = lead_change(&n, &config, Utc::now()).expect("a Lead change");
        assert_eq!(change.changed_at.to_rfc3339(), "2026-05-15T18:00:07+00:00");

        n.fields.remove("SystemModstamp");
        n.fields.remove("LastModifiedDate");
        let received = DateTime::parse_from_rfc3339("2026-05-15T18:00:09Z")
            .expect("time")
            .to_utc();
        assert_eq!(
            lead_change(&n, &config, received).map(|c| c.changed_at),
            Some(received),
            "no time sent: when it arrived"
        );

        n.fields
            .insert("LastModifiedDate".into(), "2026-05-15T18:00:00.000Z".into());
        n.object_type = "Contact".into();
        assert_eq!(lead_change(&n, &config, Utc::now()), None, "not a Lead");
    }

    #[test]
    fn org_matches_on_the_first_15_characters_only() {
        let sent = message("00D5w000004qGTOEA2");

        assert!(sent.org_matches("00D5w000004qGTOEA2"));
        assert!(sent.org_matches("00D5w000004qGTO"));
        assert!(message("00D5w000004qGTO").org_matches("00D5w000004qGTOEA2"));
        assert!(!sent.org_matches("00D5w000004qGTP"), "another org");
        assert!(!sent.org_matches("00D5w000004qgto"), "case-sensitive");
        assert!(!sent.org_matches(""), "an empty setting");
        assert!(!sent.org_matches("00D5w000004qGTOE"), "16 characters");
        assert!(!message("").org_matches(""));
    }

    #[test]
    fn a_message_without_organization_id_is_refused_naming_it() {
        let body = SAMPLE.replace("<OrganizationId>00D5w000004qGTOEA2</OrganizationId>", "");

        let error = parse(body.as_bytes()).expect_err("refused");

        assert_eq!(error, OutboundError::Missing("OrganizationId missing"));
        assert_eq!(error.to_string(), "OrganizationId missing");
    }

    #[test]
    fn a_notification_without_id_is_refused_naming_it() {
        let body = SAMPLE.replace("<Id>04l5w00005286hBAAQ</Id>", "");

        let error = parse(body.as_bytes()).expect_err("refused");

        assert_eq!(error.to_string(), "Notification without Id");
    }

    #[test]
    fn a_doctype_is_refused_wherever_it_stands() {
        let laughs = r#"<?xml version="1.0"?>
            <!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
            <Envelope><Body><notifications><OrganizationId>&lol2;</OrganizationId>
            </notifications></Body></Envelope>"#;
        let xxe =
            r#"<!doctype x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Envelope>&e;</Envelope>"#;
        let inside = SAMPLE.replace("<soapenv:Body>", "<soapenv:Body><!DOCTYPE x>");

        for body in [laughs, xxe, inside.as_str()] {
            assert_eq!(
                parse(body.as_bytes()),
                Err(OutboundError::Doctype),
                "{body}"
            );
        }
    }

    #[test]
    fn an_undeclared_entity_is_refused() {
        let body = SAMPLE.replace("Acme Oy", "Acme &oy;");

        let error = parse(body.as_bytes()).expect_err("refused");

        assert!(error.to_string().contains("&oy;"), "{error}");
    }

    #[test]
    fn more_than_100_notifications_are_refused() {
        let hundred = parse(with_notifications(100).as_bytes()).expect("100 are fine");
        assert_eq!(hundred.notifications.len(), 100);

        let error = parse(with_notifications(101).as_bytes()).expect_err("refused");

        assert_eq!(error, OutboundError::TooManyNotifications);
        assert_eq!(
            error.to_string(),
            "more than 100 Notifications in one message"
        );
    }

    #[test]
    fn no_input_makes_it_panic() {
        // Every truncation of the fixture is refused.
        let whole = SAMPLE.trim_end().len();
        for end in 0..SAMPLE.len() {
            let result = parse(&SAMPLE.as_bytes()[..end]);
            assert!(end >= whole || result.is_err(), "cut at {end}: {result:?}");
        }
        // Deep nesting, unclosed or closed.
        let deep = format!("<Envelope>{}", "<a>".repeat(100_000));
        assert_eq!(parse(deep.as_bytes()), Err(OutboundError::TooDeep));
        let closed = format!(
            "<Envelope>{}{}</Envelope>",
            "<a>".repeat(200),
            "</a>".repeat(200)
        );
        assert_eq!(parse(closed.as_bytes()), Err(OutboundError::TooDeep));
        // Not UTF-8, in text (Latin-1 `ä`) and in a name.
        let (before, after) = SAMPLE.split_once("Acme Oy").expect("the fixture's company");
        let bytes = [before.as_bytes(), b"Acme \xe4", after.as_bytes()].concat();
        assert!(matches!(parse(&bytes), Err(OutboundError::Xml(_))));
        assert!(parse(b"<\xff\xfe></\xff\xfe>").is_err());
        // Garbage: fixed pseudo-random bytes, and mangled fixtures.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for round in 0..2_000 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let mut bytes = SAMPLE.as_bytes().to_vec();
            if round % 2 == 0 {
                bytes.truncate((seed % 300) as usize);
                bytes.iter_mut().for_each(|b| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    *b = b"<>/&;!:=\"' ax\xff"[(seed % 14) as usize];
                });
            } else {
                let at = (seed as usize) % bytes.len();
                bytes[at] = (seed >> 32) as u8;
            }
            let _ = parse(&bytes);
        }
        assert_eq!(
            parse(b"").map_err(|e| e.to_string()),
            Err("XML missing: the body has no element".into())
        );
        assert!(parse(b"\0\0\0").is_err());
    }

    /// An XML document's elements, their namespace declarations and their
    /// non-blank text, in order.
    fn outline(xml: &str) -> Vec<String> {
        let mut reader = Reader::from_str(xml);
        let mut outline = Vec::new();
        loop {
            match reader.read_event().expect("well-formed") {
                Event::Start(e) | Event::Empty(e) => {
                    let mut line = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    for a in e.attributes() {
                        let a = a.expect("an attribute");
                        line.push_str(&format!(
                            " {}={}",
                            String::from_utf8_lossy(a.key.as_ref()),
                            String::from_utf8_lossy(&a.value)
                        ));
                    }
                    outline.push(line);
                }
                Event::End(e) => {
                    outline.push(format!("/{}", String::from_utf8_lossy(e.name().as_ref())))
                }
                Event::Text(t) => {
                    let text = t.decode().expect("UTF-8");
                    if !text.trim().is_empty() {
                        outline.push(format!("text {}", text.trim()));
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        outline
    }

    #[test]
    fn ack_has_the_recorded_structure_and_acks_true() {
        let expected = outline(ACK_FIXTURE);

        assert_eq!(ACK, ACK_FIXTURE, "byte for byte, as documented");

        assert_eq!(outline(ACK), expected);
        assert!(expected.contains(&"text true".to_owned()), "{expected:?}");
        assert_eq!(
            expected
                .iter()
                .skip_while(|l| *l != "Ack")
                .nth(1)
                .map(String::as_str),
            Some("text true")
        );
    }

    #[test]
    fn fault_escapes_the_message_and_stays_well_formed() {
        let fault = fault("bad <x> & \"y\"\u{0}");

        assert!(fault.contains("<faultcode>soapenv:Client</faultcode>"));
        assert!(
            fault.contains("<faultstring>bad &lt;x&gt; &amp; &quot;y&quot;\u{FFFD}</faultstring>"),
            "{fault}"
        );
        let outline = outline(&fault);
        assert!(outline.contains(&"soapenv:Fault".to_owned()), "{outline:?}");
    }
}
