//! The pull: persons (contact fields), Pipedrive leads (owner; archived
//! means lost) and deals (owner, stage) changed since the watermark, each
//! source with its own place in it and its own paging (v2 cursor, v1
//! `start`/`limit`). The same mapping turns webhook payloads into changes.

use std::collections::BTreeMap;

use lead_core::ports::{CrmChange, CrmChanges};
use lead_core::{Error, RepId, Result, Stage};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::crm::{PipedriveClient, link};
use crate::wire::{Deal, LeadData, Person, Stamp};

/// A record Pipedrive changed, from a list or a webhook.
#[derive(Debug)]
pub(crate) enum Record {
    Person(Person),
    Lead(LeadData),
    Deal(Deal),
}

/// Where changes are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Persons,
    Leads,
    ArchivedLeads,
    Deals,
}

impl Source {
    const ALL: [Source; 4] = [
        Source::Persons,
        Source::Leads,
        Source::ArchivedLeads,
        Source::Deals,
    ];

    /// Its name in the watermark.
    fn key(self) -> &'static str {
        match self {
            Source::Persons => "persons",
            Source::Leads => "leads",
            Source::ArchivedLeads => "archived",
            Source::Deals => "deals",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Source::Persons => "/api/v2/persons",
            Source::Leads => "/api/v1/leads",
            Source::ArchivedLeads => "/api/v1/leads/archived",
            Source::Deals => "/api/v2/deals",
        }
    }

    /// v2 lists page by cursor, v1 lists by `start`.
    fn cursor_paged(self) -> bool {
        matches!(self, Source::Persons | Source::Deals)
    }

    fn record(self, item: Value) -> Result<Record> {
        fn read<T: DeserializeOwned>(item: Value, what: &str) -> Result<T> {
            serde_json::from_value(item).map_err(|e| {
                Error::internal(format!("Pipedrive: a {what} in a list is not readable"))
                    .caused_by(e)
            })
        }
        Ok(match self {
            Source::Persons => Record::Person(read(item, "person")?),
            Source::Leads | Source::ArchivedLeads => Record::Lead(read(item, "lead")?),
            Source::Deals => Record::Deal(read(item, "deal")?),
        })
    }
}

/// Where one source got to: the last record read and, for the archived
/// leads (a v1 list with no `updated_since`), how far into the list.
#[derive(Debug, Clone, PartialEq)]
struct Mark {
    stamp: Stamp,
    start: u64,
}

/// Where each source got to, written
/// `persons=2026-11-23T12:00:05.000Z|1092;archived=…|<uuid>|250;…`; a
/// watermark of the first version (`time|id`, persons only) reads as the
/// persons' place.
#[derive(Debug, Default, PartialEq)]
struct Marks(BTreeMap<&'static str, Mark>);

impl Marks {
    fn parse(text: &str) -> Result<Marks> {
        let mut marks = BTreeMap::new();
        for part in text.split(';').filter(|p| !p.trim().is_empty()) {
            let (key, mark) = part.split_once('=').unwrap_or(("persons", part));
            let Some(source) = Source::ALL.into_iter().find(|s| s.key() == key) else {
                continue;
            };
            marks.insert(source.key(), parse_mark(mark)?);
        }
        Ok(Marks(marks))
    }
}

fn parse_mark(text: &str) -> Result<Mark> {
    let mut parts = text.splitn(3, '|');
    let at = parts.next().unwrap_or_default();
    let at = crate::wire::time(at)
        .ok_or_else(|| Error::internal("Pipedrive: the stored watermark is not a time"))?;
    let id = parts.next().unwrap_or("0").to_owned();
    let start = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok(Mark {
        stamp: Stamp { at, id },
        start,
    })
}

impl std::fmt::Display for Marks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (key, mark) in &self.0 {
            if !first {
                f.write_str(";")?;
            }
            first = false;
            write!(
                f,
                "{key}={}|{}",
                mark.stamp.at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                mark.stamp.id
            )?;
            if mark.start > 0 {
                write!(f, "|{}", mark.start)?;
            }
        }
        Ok(())
    }
}

impl PipedriveClient {
    /// Up to `limit` changes, shared fairly between the sources so a busy
    /// one does not starve the others, oldest first.
    pub(crate) async fn pull(&self, watermark: Option<String>, limit: usize) -> Result<CrmChanges> {
        let limit = limit.clamp(1, 2000);
        let mut marks = match watermark.as_deref() {
            Some(text) => Marks::parse(text)?,
            None => Marks::default(),
        };
        let share = limit.div_ceil(Source::ALL.len()).clamp(1, 500);
        let mut changes = Vec::new();
        for source in Source::ALL {
            let after = marks.0.get(source.key()).cloned();
            let (read, start) = self.pull_source(source, after.as_ref(), share).await?;
            if let Some(newest) = read.iter().map(|(stamp, _)| stamp).max() {
                let mark = Mark {
                    stamp: newest.clone(),
                    start,
                };
                marks.0.insert(source.key(), mark);
            }
            changes.extend(read);
        }
        changes.sort_by_key(|(stamp, _)| stamp.at);
        let next_watermark = if marks.0.is_empty() {
            watermark
        } else {
            Some(marks.to_string())
        };
        Ok(CrmChanges {
            changes: changes.into_iter().map(|(_, c)| c).collect(),
            next_watermark,
        })
    }

    /// The changes of one source after `after`, at most `limit`, in the
    /// order of their stamps, and where in the list the next run starts
    /// (archived leads only). A list starts at the watermark's second
    /// (`updated_since` has seconds) and skips what the last run read.
    /// The archived leads' list has no `updated_since`: sorted by
    /// `update_time`, new archivals come last, so a run starts a page
    /// before where the last one stopped (records updated since move
    /// from there to the end) and skips what it read.
    async fn pull_source(
        &self,
        source: Source,
        after: Option<&Mark>,
        limit: usize,
    ) -> Result<(Vec<(Stamp, CrmChange)>, u64)> {
        let mut query = vec![("limit", limit.to_string())];
        if source.cursor_paged() {
            query.push(("sort_by", "update_time".to_owned()));
            query.push(("sort_direction", "asc".to_owned()));
        } else {
            query.push(("sort", "update_time".to_owned()));
        }
        let mut position = 0;
        let mut next: Option<String> = None;
        match (source, after) {
            (Source::ArchivedLeads, Some(mark)) => {
                position = mark.start.saturating_sub(limit as u64);
                if position > 0 {
                    next = Some(position.to_string());
                }
            }
            (Source::ArchivedLeads, None) => {}
            (_, Some(mark)) => query.push((
                "updated_since",
                mark.stamp.at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            )),
            (_, None) => {}
        }
        let after = after.map(|m| &m.stamp);
        let mut found = Vec::new();
        let mut cut = None;
        loop {
            let mut page_query = query.clone();
            if let Some(n) = &next {
                let name = if source.cursor_paged() {
                    "cursor"
                } else {
                    "start"
                };
                page_query.push((name, n.clone()));
            }
            let (items, more): (Vec<Value>, _) = self
                .http()
                .call(Method::GET, source.path(), &page_query, None)
                .await?;
            for item in items {
                let Some((stamp, change)) = self.change_of(source.record(item)?).await? else {
                    position += 1;
                    continue;
                };
                // Full: records of the last one's time still come (the
                // lists do not order ties, so a cut among them could skip
                // one for good); the first later one ends the run.
                if cut.is_some_and(|at| stamp.at != at) {
                    return Ok((found, position));
                }
                position += 1;
                if after.is_some_and(|w| stamp <= *w) {
                    continue;
                }
                if found.len() + 1 >= limit {
                    cut = Some(stamp.at);
                }
                found.push((stamp, change));
            }
            next = match (more, source.cursor_paged()) {
                (Some(more), true) => more.next_cursor,
                (Some(more), false) => more.next_start().map(|s| s.to_string()),
                (None, _) => None,
            };
            if next.is_none() {
                return Ok((found, position));
            }
        }
    }

    /// A changed record as a change of the lead linked to it, with the
    /// record's stamp; `None` for a record that says nothing we read.
    pub(crate) async fn change_of(&self, record: Record) -> Result<Option<(Stamp, CrmChange)>> {
        let stamp = match &record {
            Record::Person(p) => Stamp::try_from(p)?,
            Record::Lead(l) => Stamp::try_from(l)?,
            Record::Deal(d) => Stamp::try_from(d)?,
        };
        let change = match record {
            Record::Person(person) => CrmChange {
                link: link("person", person.id),
                lead: None,
                stage: None,
                owner: None,
                contact: contact_of(&person),
                changed_at: stamp.at,
            },
            Record::Lead(lead) => CrmChange {
                link: link("lead", &lead.id),
                lead: None,
                stage: lead.is_archived.then_some(Stage::Lost),
                owner: self.rep_of(lead.owner_id).await?,
                contact: BTreeMap::new(),
                changed_at: stamp.at,
            },
            Record::Deal(deal) => {
                let config = self.http().config();
                let stage = match deal.status.as_deref() {
                    Some("won") => Some(Stage::Won),
                    Some("lost") => Some(Stage::Lost),
                    Some("open") => deal.stage_id.and_then(|id| config.stage_of(id)),
                    _ => None,
                };
                CrmChange {
                    link: link("deal", deal.id),
                    lead: None,
                    stage,
                    owner: self.rep_of(deal.owner_id).await?,
                    contact: BTreeMap::new(),
                    changed_at: stamp.at,
                }
            }
        };
        Ok(Some((stamp, change)))
    }

    /// The rep whose e-mail the Pipedrive user `id` has; none for the
    /// token's own user, who owns the records of reps without a user.
    async fn rep_of(&self, id: Option<u64>) -> Result<Option<RepId>> {
        let Some(id) = id else { return Ok(None) };
        let users = self.users().await?;
        Ok(users
            .as_ref()
            .filter(|u| u.me != Some(id))
            .and_then(|u| u.by_id.get(&id))
            .and_then(|email| RepId::parse(email).ok()))
    }
}

/// A person's contact fields as ours. Names are read back only when the
/// person's name is two words, a first and a last name, with no `@`:
/// Pipedrive splits `name` into first and last name itself (the API
/// takes only `name`), so a longer or shorter name, or the e-mail
/// standing in for a missing one, could come back split differently
/// from ours and move our fields by our own push.
fn contact_of(person: &Person) -> BTreeMap<String, String> {
    let mut contact = BTreeMap::new();
    let mut put = |ours: &str, value: Option<&str>| {
        if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
            contact.insert(ours.to_owned(), v.to_owned());
        }
    };
    let name = person.name.as_deref().unwrap_or_default();
    let given = |part: &Option<String>| part.as_deref().is_some_and(|p| !p.trim().is_empty());
    if name.split_whitespace().count() == 2
        && !name.contains('@')
        && given(&person.first_name)
        && given(&person.last_name)
    {
        put("first_name", person.first_name.as_deref());
        put("last_name", person.last_name.as_deref());
    }
    let phone = person
        .phones
        .iter()
        .find(|p| p.primary)
        .or(person.phones.first());
    put("phone", phone.map(|p| p.value.as_str()));
    contact
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_keeps_each_source_and_reads_the_first_version() {
        let marks =
            Marks::parse("persons=2026-11-23T12:00:05.000Z|1092;deals=2026-11-23T12:00:07.250Z|3")
                .expect("marks");
        assert_eq!(marks.0.len(), 2);
        assert_eq!(marks.0["deals"].stamp.id, "3");
        assert_eq!(
            marks.to_string(),
            "deals=2026-11-23T12:00:07.250Z|3;persons=2026-11-23T12:00:05.000Z|1092"
        );
        let old = Marks::parse("2026-11-23T12:00:05Z|1092").expect("the first version");
        assert_eq!(old.0["persons"].stamp.id, "1092");
        let archived = "archived=2026-11-23T12:00:05.000Z|adf21080-0e10|250";
        let read = Marks::parse(archived).expect("an archived place");
        assert_eq!(read.0["archived"].start, 250);
        assert_eq!(read.to_string(), archived);
        assert!(Marks::parse("persons=yesterday").is_err());
    }

    #[test]
    fn stamps_order_by_time_then_id_as_a_number() {
        let at = crate::wire::time("2026-11-23T12:00:05Z").expect("time");
        let s = |id: &str| Stamp { at, id: id.into() };
        assert!(s("9") < s("10"), "numerically");
        let later = Stamp {
            at: at + chrono::Duration::milliseconds(1),
            id: "1".into(),
        };
        assert!(s("1092") < later);
    }

    #[test]
    fn names_come_back_only_when_pipedrive_cannot_split_them_otherwise() {
        let person = |name: &str, first: &str, last: &str| Person {
            id: 1,
            name: Some(name.into()),
            emails: vec![],
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            phones: vec![],
            update_time: None,
        };
        let two = contact_of(&person("Ana López", "Ana", "López"));
        assert_eq!(two.get("last_name").map(String::as_str), Some("López"));
        assert!(contact_of(&person("Ana María López", "Ana", "María López")).is_empty());
        assert!(contact_of(&person("ana@x.com", "ana@x.com", "")).is_empty());
    }
}
