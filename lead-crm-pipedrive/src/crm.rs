//! [`CrmClient`] for Pipedrive: each lead becomes a person (found by
//! e-mail first, so the company never gets a twin) and a Pipedrive lead on
//! it, with a note of its score; a qualified lead is converted to a deal;
//! follow-ups become activities. The pull is in [`crate::pull`].

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use lead_core::ports::{CrmChanges, PushOutcome, TaskPush};
use lead_core::{CrmClient, CrmKind, CrmLink, Error, FollowUpStatus, Lead, RepId, Result, Stage};
use reqwest::Method;
use serde_json::Value;

use crate::client::Http;
use crate::config::{DEAL_STAGES, PipedriveConfig};
use crate::wire::{
    ActivityBody, Channel, ConversionStatus, ConvertBody, Created, DealPatch, LeadBody, LeadData,
    Money, Note, NoteBody, Participant, Person, PersonBody, SearchResult, User,
};

/// How long the user list is trusted.
const USERS_TTL: Duration = Duration::from_secs(15 * 60);

/// The waits between polls of a lead's conversion to a deal (Pipedrive
/// runs it as a job): about 8 s in all, then the push goes on and a
/// later push asks again.
const CONVERSION_POLLS: [Duration; 5] = [
    Duration::from_millis(0),
    Duration::from_millis(250),
    Duration::from_millis(750),
    Duration::from_secs(2),
    Duration::from_secs(5),
];

/// The line of the note that carries a lead's score, by which the push
/// finds it again after a crash.
const SCORE_MARKER: &str = "lead-capture score";

/// A Pipedrive company as a CRM.
pub struct PipedriveClient {
    http: Http,
    /// Active users: lower-cased e-mail → id, and back; with when read.
    users: tokio::sync::Mutex<Option<Users>>,
}

pub(crate) struct Users {
    /// The token's own user (`is_you`): it owns what no rep of ours
    /// does, and owning a record says nothing of a rep.
    pub(crate) me: Option<u64>,
    by_email: HashMap<String, u64>,
    pub(crate) by_id: HashMap<u64, String>,
    read_at: std::time::Instant,
}

impl std::fmt::Debug for PipedriveClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipedriveClient")
            .field("base_url", &self.http.config().base_url)
            .finish_non_exhaustive()
    }
}

/// Our link to a Pipedrive record of `object`.
pub(crate) fn link(object: &str, id: impl ToString) -> CrmLink {
    CrmLink {
        crm: CrmKind::Pipedrive,
        object: object.into(),
        id: id.to_string(),
    }
}

/// The id of `lead`'s Pipedrive record of `object`, once pushed.
fn linked<'a>(lead: &'a Lead, object: &str) -> Option<&'a str> {
    lead.crm_links
        .iter()
        .find(|l| l.crm == CrmKind::Pipedrive && l.object == object)
        .map(|l| l.id.as_str())
}

fn linked_number(lead: &Lead, object: &str) -> Option<u64> {
    linked(lead, object).and_then(|id| id.parse().ok())
}

/// Where a lead's activities and note hang: its Pipedrive lead, or the
/// deal it was converted to.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Lead(String),
    Deal(u64),
}

/// Where a conversion of a Pipedrive lead to a deal stands.
#[derive(Debug, Clone, PartialEq)]
enum Conversion {
    /// Done: the deal.
    Deal(u64),
    /// Pipedrive is still at it: `<lead id>/<conversion id>`.
    Running(String),
    /// Failed, refused, or unknown to Pipedrive: why.
    Gone(String),
}

/// A record's JSON body.
fn body_of(value: &impl serde::Serialize, what: &str) -> Result<Value> {
    serde_json::to_value(value)
        .map_err(|e| Error::internal(format!("Pipedrive: {what} body")).caused_by(e))
}

/// A lead's value as Pipedrive's number.
fn amount(lead: &Lead) -> Option<(f64, String)> {
    match (&lead.estimated_value, &lead.currency) {
        (Some(value), Some(currency)) => Some((value.to_string().parse().ok()?, currency.clone())),
        _ => None,
    }
}

/// The name a person is given: the lead's name, else its e-mail.
fn person_name(lead: &Lead) -> Option<String> {
    let f = &lead.fields;
    match (&f.first_name, &f.last_name) {
        (Some(first), Some(last)) => Some(format!("{first} {last}")),
        (Some(one), None) | (None, Some(one)) => Some(one.clone()),
        (None, None) => None,
    }
}

/// `value` among `items`, compared without case or spaces.
fn holds(items: &[Channel], value: &str) -> bool {
    let key = |v: &str| {
        v.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_lowercase()
    };
    items.iter().any(|i| key(&i.value) == key(value))
}

/// `value` added to `items` as the primary one, unless there already.
fn with_primary(mut items: Vec<Channel>, value: &str) -> Vec<Channel> {
    if !holds(&items, value) {
        for item in &mut items {
            item.primary = false;
        }
        items.insert(0, Channel::primary(value, "work"));
    }
    items
}

/// The line that ties a score note to its lead.
fn note_tag(lead: &Lead) -> String {
    format!("{SCORE_MARKER} · lead {}", lead.ext_id)
}

/// The archive flag a push sends: archived when lost; taken out of the
/// archive when the lead was reopened from lost; else left as people
/// set it (unqualified stays open there: an archived lead reads back as
/// lost).
fn archived(lead: &Lead) -> Option<bool> {
    match lead.stage {
        Stage::Lost => Some(true),
        _ if lead.history.last().is_some_and(|c| c.from == Stage::Lost) => Some(false),
        _ => None,
    }
}

/// The note's HTML: the score, the priority, and each rule's points.
fn score_note(lead: &Lead) -> String {
    fn escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }
    let mut html = format!(
        "<p><b>Lead score {}/100</b>, {} priority</p><ul>",
        lead.score.value(),
        lead.priority.as_str()
    );
    for hit in &lead.score_breakdown {
        html.push_str(&format!(
            "<li>{} / {}: {:+}</li>",
            escape(hit.group.as_str()),
            escape(hit.rule.as_str()),
            hit.points
        ));
    }
    // Our lead id, so people can look the lead up here, and the push
    // finds this lead's note again.
    html.push_str(&format!("</ul><p><i>{}</i></p>", note_tag(lead)));
    html
}

impl PipedriveClient {
    /// A client for the company `config` names.
    pub fn new(config: PipedriveConfig) -> Result<Self> {
        Ok(PipedriveClient {
            http: Http::new(config)?,
            users: tokio::sync::Mutex::new(None),
        })
    }

    pub(crate) fn http(&self) -> &Http {
        &self.http
    }

    /// The users, read again when missing or older than [`USERS_TTL`].
    pub(crate) async fn users(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Users>>> {
        let mut users = self.users.lock().await;
        if users
            .as_ref()
            .is_none_or(|u| u.read_at.elapsed() >= USERS_TTL)
        {
            let (list, _): (Vec<User>, _) = self
                .http
                .call(Method::GET, "/api/v1/users", &[], None)
                .await?;
            let me = list.iter().find(|u| u.is_you).map(|u| u.id);
            let active = list.into_iter().filter(|u| u.active_flag);
            let mut by_email = HashMap::new();
            let mut by_id = HashMap::new();
            for user in active {
                by_email.insert(user.email.to_ascii_lowercase(), user.id);
                by_id.insert(user.id, user.email.to_ascii_lowercase());
            }
            *users = Some(Users {
                me,
                by_email,
                by_id,
                read_at: std::time::Instant::now(),
            });
        }
        Ok(users)
    }

    /// The Pipedrive user of `rep`: the one with the rep's e-mail, else
    /// the token's own user (so a reassignment to a rep without a user
    /// takes the record from the previous rep's user, and does not come
    /// back as that user's); no call without a rep.
    async fn owner_id(&self, rep: Option<&RepId>) -> Result<Option<u64>> {
        let Some(rep) = rep else { return Ok(None) };
        let users = self.users().await?;
        Ok(users.as_ref().and_then(|u| {
            u.by_email
                .get(&rep.as_str().to_ascii_lowercase())
                .copied()
                .or(u.me)
        }))
    }

    /// The person of `lead`, and whether it existed before this push:
    /// linked already, else one this batch made for the same e-mail, else
    /// found by e-mail, else created (owned by the lead's rep). An
    /// existing person gets the lead's name, e-mail and phone added
    /// without losing the ones people entered.
    async fn person(
        &self,
        lead: &Lead,
        owner: Option<u64>,
        made: &mut HashMap<String, u64>,
    ) -> Result<(u64, bool)> {
        let email = lead.fields.email.as_str().to_ascii_lowercase();
        if let Some(id) = linked_number(lead, "person").or_else(|| made.get(&email).copied()) {
            match self.update_person(id, lead).await {
                Ok(()) => {
                    made.insert(email, id);
                    return Ok((id, true));
                }
                // Deleted or merged away in Pipedrive since: the person
                // that has the e-mail now, else a new one.
                Err(Error::NotFound(_)) => {}
                Err(err) => return Err(err),
            }
        }
        if let Some(id) = self.find_person(&email).await? {
            self.update_person(id, lead).await?;
            made.insert(email, id);
            return Ok((id, true));
        }
        let body = PersonBody {
            name: person_name(lead).unwrap_or_else(|| email.clone()),
            emails: vec![Channel::primary(lead.fields.email.as_str(), "work")],
            phones: lead
                .fields
                .phone
                .as_ref()
                .map(|p| vec![Channel::primary(p.as_str(), "work")])
                .unwrap_or_default(),
            owner_id: owner,
        };
        let (created, _): (Created, _) = self
            .http
            .call(
                Method::POST,
                "/api/v2/persons",
                &[],
                Some(&body_of(&body, "a person")?),
            )
            .await?;
        made.insert(email, created.id);
        Ok((created.id, false))
    }

    /// Reads the person and writes what the lead adds to it, if anything.
    async fn update_person(&self, id: u64, lead: &Lead) -> Result<()> {
        let path = format!("/api/v2/persons/{id}");
        let (current, _): (Person, _) = self.http.call(Method::GET, &path, &[], None).await?;
        let name = person_name(lead)
            .or_else(|| current.name.clone())
            .unwrap_or_else(|| lead.fields.email.as_str().to_owned());
        let emails = with_primary(current.emails.clone(), lead.fields.email.as_str());
        let phones = match &lead.fields.phone {
            Some(phone) => with_primary(current.phones.clone(), phone.as_str()),
            None => current.phones.clone(),
        };
        if current.name.as_deref() == Some(name.as_str())
            && emails == current.emails
            && phones == current.phones
        {
            return Ok(());
        }
        let body = PersonBody {
            name,
            emails,
            phones,
            owner_id: None,
        };
        let _: (Value, _) = self
            .http
            .call(
                Method::PATCH,
                &path,
                &[],
                Some(&body_of(&body, "a person")?),
            )
            .await?;
        Ok(())
    }

    /// The person whose e-mail is exactly `email`, if any.
    async fn find_person(&self, email: &str) -> Result<Option<u64>> {
        let query = [
            ("term", email.to_owned()),
            ("fields", "email".to_owned()),
            ("exact_match", "true".to_owned()),
            ("limit", "10".to_owned()),
        ];
        let (found, _): (SearchResult, _) = self
            .http
            .call(Method::GET, "/api/v2/persons/search", &query, None)
            .await?;
        Ok(found
            .items
            .into_iter()
            .find(|hit| {
                hit.item
                    .emails
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(email))
            })
            .map(|hit| hit.item.id))
    }

    /// The Pipedrive lead of `lead` on `person`, and whether it was found
    /// again rather than linked or made: updated when linked; when not,
    /// and the person existed, one we made on it before a crash is
    /// reused; else created.
    async fn pipedrive_lead(
        &self,
        lead: &Lead,
        person: u64,
        person_existed: bool,
        owner: Option<u64>,
    ) -> Result<(String, bool)> {
        let origin = self.origin_of(lead);
        let mut known = linked(lead, "lead").map(|id| (id.to_owned(), false));
        if known.is_none() && person_existed {
            known = self
                .lead_made_on(person, &origin)
                .await?
                .map(|id| (id, true));
        }
        let body = LeadBody {
            title: lead.crm_title(),
            person_id: Some(person),
            owner_id: owner,
            value: amount(lead).map(|(amount, currency)| Money { amount, currency }),
            origin_id: known.is_none().then(|| origin.clone()),
            is_archived: known.as_ref().and(archived(lead)),
        };
        let body = body_of(&body, "a lead")?;
        match known {
            Some((id, found)) => {
                let path = format!("/api/v1/leads/{id}");
                let (data, _): (LeadData, _) = self
                    .http
                    .call(Method::PATCH, &path, &[], Some(&body))
                    .await
                    .map_err(|err| match err {
                        Error::NotFound(_) => Error::NotFound(format!(
                            "Pipedrive: the lead {id} is gone (deleted, or converted to a deal in Pipedrive)"
                        )),
                        other => other,
                    })?;
                Ok((data.id, found))
            }
            None => {
                let (data, _): (LeadData, _) = self
                    .http
                    .call(Method::POST, "/api/v1/leads", &[], Some(&body))
                    .await?;
                // A create takes no archive flag: a lead lost before its
                // first push is archived right after.
                if archived(lead) == Some(true) {
                    let path = format!("/api/v1/leads/{}", data.id);
                    let archive = serde_json::json!({ "is_archived": true });
                    let _: (LeadData, _) = self
                        .http
                        .call(Method::PATCH, &path, &[], Some(&archive))
                        .await?;
                }
                Ok((data.id, false))
            }
        }
    }

    /// The `origin_id` of `lead`'s Pipedrive lead: ours and the lead's
    /// id, so a lead found again is this lead's, also on a person other
    /// leads share.
    fn origin_of(&self, lead: &Lead) -> String {
        format!("{}:{}", self.http.config().origin_id, lead.ext_id)
    }

    /// The Pipedrive lead on `person` with `origin`, if any.
    async fn lead_made_on(&self, person: u64, origin: &str) -> Result<Option<String>> {
        let query = [
            ("person_id", person.to_string()),
            ("limit", "500".to_owned()),
        ];
        let (leads, _): (Vec<LeadData>, _) = self
            .http
            .call(Method::GET, "/api/v1/leads", &query, None)
            .await?;
        Ok(leads
            .into_iter()
            .find(|l| l.origin_id.as_deref() == Some(origin))
            .map(|l| l.id))
    }

    /// Converts the Pipedrive lead `id` to a deal in the stage for
    /// `lead`'s stage (else the default stage), polling Pipedrive's job
    /// for a few seconds.
    async fn convert(&self, lead: &Lead, id: &str) -> Result<Conversion> {
        let config = self.http.config();
        let body = ConvertBody {
            stage_id: config
                .stage_ids
                .get(&lead.stage)
                .copied()
                .or(config.default_stage_id),
        };
        let path = format!("/api/v2/leads/{id}/convert/deal");
        let (started, _): (crate::wire::Conversion, _) = self
            .http
            .call(
                Method::POST,
                &path,
                &[],
                Some(&body_of(&body, "a conversion")?),
            )
            .await?;
        let pending = format!("{id}/{}", started.conversion_id);
        for wait in CONVERSION_POLLS {
            tokio::time::sleep(wait).await;
            match self.follow_conversion(&pending).await? {
                Conversion::Running(_) => {}
                Conversion::Gone(why) => return Err(Error::NotAllowed(why)),
                done @ Conversion::Deal(_) => return Ok(done),
            }
        }
        Ok(Conversion::Running(pending))
    }

    /// Where the conversion `pending` (`<lead id>/<conversion id>`) is.
    async fn follow_conversion(&self, pending: &str) -> Result<Conversion> {
        let Some((id, conversion)) = pending.split_once('/') else {
            return Ok(Conversion::Gone(format!("not a conversion: {pending}")));
        };
        let Some(status) = self.conversion_status(id, conversion).await? else {
            return Ok(Conversion::Gone(format!(
                "Pipedrive does not know the conversion of lead {id}"
            )));
        };
        Ok(match (status.status.as_str(), status.deal_id) {
            ("completed", Some(deal)) => Conversion::Deal(deal),
            ("completed", None) => {
                return Err(Error::unavailable(
                    "Pipedrive: a completed conversion without its deal",
                ));
            }
            ("running" | "not_started", _) => Conversion::Running(pending.to_owned()),
            (other, _) => Conversion::Gone(format!(
                "Pipedrive {other} the conversion of lead {id} to a deal"
            )),
        })
    }

    /// A conversion's state; `None` when Pipedrive does not know it.
    async fn conversion_status(
        &self,
        id: &str,
        conversion: &str,
    ) -> Result<Option<ConversionStatus>> {
        let path = format!("/api/v2/leads/{id}/convert/status/{conversion}");
        match self.http.call(Method::GET, &path, &[], None).await {
            Ok((status, _)) => Ok(Some(status)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Writes what our lead says of its deal: owner, value, and the stage
    /// (won, lost, or an open stage mapped in `stage_ids`). Other stages
    /// of ours leave the deal alone.
    async fn update_deal(&self, lead: &Lead, deal: u64, owner: Option<u64>) -> Result<()> {
        let config = self.http.config();
        // An open stage moves the deal within its pipeline but never
        // reopens it: a deal closed in Pipedrive stays closed until a
        // person here closes or reopens the lead.
        let (status, stage_id) = match lead.stage {
            Stage::Won => (Some("won"), None),
            Stage::Lost => (Some("lost"), None),
            stage => (None, config.stage_ids.get(&stage).copied()),
        };
        let value = amount(lead);
        let body = DealPatch {
            owner_id: owner,
            value: value.as_ref().map(|(v, _)| *v),
            currency: value.map(|(_, c)| c),
            status,
            stage_id,
        };
        let body = body_of(&body, "a deal")?;
        if body.as_object().is_some_and(|o| o.is_empty()) {
            return Ok(());
        }
        let path = format!("/api/v2/deals/{deal}");
        let _: (Value, _) = self
            .http
            .call(Method::PATCH, &path, &[], Some(&body))
            .await
            .map_err(|err| match err {
                Error::NotFound(_) => {
                    Error::NotFound(format!("Pipedrive: the deal {deal} is gone"))
                }
                other => other,
            })?;
        Ok(())
    }

    /// The note with the lead's score on `target`: written again when
    /// linked, else found again after a crash (`recovered`), else made.
    async fn score_note(&self, lead: &Lead, target: &Target, recovered: bool) -> Result<u64> {
        let content = score_note(lead);
        let mut known = linked_number(lead, "note");
        if known.is_none() && recovered {
            known = self.note_on(lead, target).await?;
        }
        if let Some(id) = known {
            let body = NoteBody {
                content: content.clone(),
                lead_id: None,
                deal_id: None,
            };
            let path = format!("/api/v1/notes/{id}");
            match self
                .http
                .call::<Value>(Method::PUT, &path, &[], Some(&body_of(&body, "a note")?))
                .await
            {
                Ok(_) => return Ok(id),
                // Deleted by someone: made again.
                Err(Error::NotFound(_)) => {}
                Err(err) => return Err(err),
            }
        }
        let (lead_id, deal_id) = match target {
            Target::Lead(id) => (Some(id.clone()), None),
            Target::Deal(id) => (None, Some(*id)),
        };
        let body = NoteBody {
            content,
            lead_id,
            deal_id,
        };
        let (created, _): (Created, _) = self
            .http
            .call(
                Method::POST,
                "/api/v1/notes",
                &[],
                Some(&body_of(&body, "a note")?),
            )
            .await?;
        Ok(created.id)
    }

    /// `lead`'s score note on `target`, if one is there.
    async fn note_on(&self, lead: &Lead, target: &Target) -> Result<Option<u64>> {
        let filter = match target {
            Target::Lead(id) => ("lead_id", id.clone()),
            Target::Deal(id) => ("deal_id", id.to_string()),
        };
        let query = [filter, ("limit", "100".to_owned())];
        let (notes, _): (Vec<Note>, _) = self
            .http
            .call(Method::GET, "/api/v1/notes", &query, None)
            .await?;
        Ok(notes
            .into_iter()
            .find(|n| n.content.contains(&note_tag(lead)))
            .map(|n| n.id))
    }

    /// One lead: its person, its Pipedrive lead or deal, the conversion
    /// when it is qualified, the score note. Once the person is there, a
    /// failure of the rest makes the outcome `Partly` (the links made so
    /// far kept, the rest retried or refused), with the error when it is
    /// the CRM's as a whole, so the batch stops. A conversion Pipedrive
    /// is still running is retried too, until its deal is known.
    async fn push_one(
        &self,
        lead: &Lead,
        made: &mut HashMap<String, u64>,
    ) -> Result<(PushOutcome, Option<Error>)> {
        let owner = self.owner_id(lead.assigned_to.as_ref()).await?;
        let (person, existed) = self.person(lead, owner, made).await?;
        let mut links = vec![link("person", person)];
        let mut converting = None;
        let rest = async {
            // A conversion a previous push left running comes first:
            // Pipedrive deletes the lead once it completes.
            let mut deal = linked_number(lead, "deal");
            if deal.is_none()
                && let Some(pending) = linked(lead, "conversion")
            {
                match self.follow_conversion(pending).await? {
                    Conversion::Deal(id) => deal = Some(id),
                    Conversion::Running(pending) => converting = Some(pending),
                    Conversion::Gone(_) => {}
                }
            }
            let mut recovered = false;
            let mut target = match (deal, &converting) {
                (Some(deal), _) => {
                    links.push(link("deal", deal));
                    self.update_deal(lead, deal, owner).await?;
                    Target::Deal(deal)
                }
                (None, Some(pending)) => {
                    let id = pending
                        .split_once('/')
                        .map_or(pending.as_str(), |(id, _)| id);
                    Target::Lead(id.to_owned())
                }
                (None, None) => {
                    let (id, found) = self.pipedrive_lead(lead, person, existed, owner).await?;
                    recovered = found;
                    links.push(link("lead", &id));
                    Target::Lead(id)
                }
            };
            if converting.is_none()
                && let Target::Lead(id) = &target
                && self.http.config().create_deals
                && DEAL_STAGES.contains(&lead.stage)
            {
                match self.convert(lead, id).await? {
                    Conversion::Deal(deal) => {
                        links.push(link("deal", deal));
                        target = Target::Deal(deal);
                        if matches!(lead.stage, Stage::Won) {
                            self.update_deal(lead, deal, owner).await?;
                        }
                    }
                    Conversion::Running(pending) => converting = Some(pending),
                    Conversion::Gone(why) => return Err(Error::NotAllowed(why)),
                }
            }
            let note = self.score_note(lead, &target, recovered).await?;
            links.push(link("note", note));
            Ok::<_, Error>(())
        };
        let problem = rest.await.err();
        if let Some(pending) = &converting {
            links.push(link("conversion", pending));
        }
        Ok(match (problem, converting) {
            (None, None) => (PushOutcome::Synced(links), None),
            (None, Some(_)) => {
                let outcome = PushOutcome::Partly {
                    links,
                    problem: "Pipedrive is still converting the lead to a deal".into(),
                    temporary: true,
                };
                (outcome, None)
            }
            (Some(err), _) => match outcome_of(err) {
                Ok(refused) => {
                    let why = match refused {
                        PushOutcome::Rejected(why) => why,
                        other => format!("{other:?}"),
                    };
                    let outcome = PushOutcome::Partly {
                        links,
                        problem: why,
                        temporary: false,
                    };
                    (outcome, None)
                }
                Err(err) => {
                    let outcome = PushOutcome::Partly {
                        links,
                        problem: err.to_string(),
                        temporary: true,
                    };
                    (outcome, Some(err))
                }
            },
        })
    }

    /// The activities of `target` that carry a task marker, by marker
    /// (one page of 500: a lead has a few).
    async fn activities_of(&self, target: &Target) -> Result<HashMap<String, u64>> {
        let filter = match target {
            Target::Lead(id) => ("lead_id", id.clone()),
            Target::Deal(id) => ("deal_id", id.to_string()),
        };
        let query = [filter, ("limit", "500".to_owned())];
        let (activities, _): (Vec<crate::wire::Activity>, _) = self
            .http
            .call(Method::GET, "/api/v2/activities", &query, None)
            .await?;
        Ok(activities
            .into_iter()
            .filter_map(|a| {
                let note = a.note?;
                let at = note.find("lead-capture task ")?;
                let marker: String = note[at..]
                    .chars()
                    .take("lead-capture task ".len() + 32)
                    .collect();
                Some((marker, a.id))
            })
            .collect())
    }

    /// One follow-up as an activity on `target`, updated when `known`.
    async fn push_task(
        &self,
        push: &TaskPush,
        person: u64,
        target: &Target,
        known: Option<u64>,
        marker: &str,
    ) -> Result<u64> {
        let owner = self.owner_id(push.task.assigned_to.as_ref()).await?;
        let note = match &push.task.notes {
            Some(notes) => format!("{notes}\n\n{marker}"),
            None => marker.to_owned(),
        };
        let (lead_id, deal_id) = match target {
            Target::Lead(id) => (Some(id.clone()), None),
            Target::Deal(id) => (None, Some(*id)),
        };
        let body = ActivityBody {
            subject: push.task.subject.clone(),
            kind: "call".into(),
            owner_id: owner,
            lead_id,
            deal_id,
            participants: vec![Participant {
                person_id: person,
                primary: true,
            }],
            due_date: push.task.due_at.format("%Y-%m-%d").to_string(),
            due_time: push.task.due_at.format("%H:%M").to_string(),
            done: push.task.status == FollowUpStatus::Done,
            note: Some(note),
        };
        let body = body_of(&body, "an activity")?;
        let (created, _): (Created, _) = match known {
            Some(id) => {
                let path = format!("/api/v2/activities/{id}");
                self.http
                    .call(Method::PATCH, &path, &[], Some(&body))
                    .await?
            }
            None => {
                self.http
                    .call(Method::POST, "/api/v2/activities", &[], Some(&body))
                    .await?
            }
        };
        Ok(created.id)
    }
}

/// The line an activity's note carries to tie it to our follow-up task:
/// Pipedrive has no external-id field to upsert activities by.
fn task_marker(task: &uuid::Uuid) -> String {
    format!("lead-capture task {}", task.simple())
}

/// Records one record's result among `total`: its outcome, or a refusal
/// when the record alone is at fault. A failure of the CRM as a whole
/// stops there (`Ok(false)`): the rest are marked to retry, or, when
/// nothing went yet, the error (and its Retry-After) stands for the whole
/// call.
fn record(
    sent: Result<PushOutcome>,
    outcomes: &mut Vec<PushOutcome>,
    total: usize,
) -> Result<bool> {
    let err = match sent {
        Ok(outcome) => {
            outcomes.push(outcome);
            return Ok(true);
        }
        Err(err) => err,
    };
    match outcome_of(err) {
        Ok(refused) => {
            outcomes.push(refused);
            Ok(true)
        }
        Err(err) if outcomes.is_empty() => Err(err),
        Err(err) => {
            retry_rest(outcomes, total, &err);
            Ok(false)
        }
    }
}

/// Marks the records not sent yet to retry, for `err`.
fn retry_rest(outcomes: &mut Vec<PushOutcome>, total: usize, err: &Error) {
    let why = err.to_string();
    let left = total - outcomes.len();
    outcomes.extend(std::iter::repeat_with(|| PushOutcome::Retry(why.clone())).take(left));
}

/// A failure as the outcome of one record, when the record alone is at
/// fault; `None` when the CRM as a whole is (the caller stops there).
fn outcome_of(err: Error) -> std::result::Result<PushOutcome, Error> {
    match err {
        Error::NotAllowed(why) | Error::NotFound(why) => Ok(PushOutcome::Rejected(why)),
        other => Err(other),
    }
}

#[async_trait]
impl CrmClient for PipedriveClient {
    fn kind(&self) -> CrmKind {
        CrmKind::Pipedrive
    }

    async fn push_leads(&self, leads: &[Lead]) -> Result<Vec<PushOutcome>> {
        let mut outcomes = Vec::with_capacity(leads.len());
        // Persons this batch found or made, by e-mail: a second lead with
        // the same e-mail joins the first one's person even before
        // Pipedrive's search index shows it.
        let mut made = HashMap::new();
        for lead in leads {
            match self.push_one(lead, &mut made).await {
                Ok((outcome, None)) => outcomes.push(outcome),
                Ok((outcome, Some(err))) => {
                    outcomes.push(outcome);
                    retry_rest(&mut outcomes, leads.len(), &err);
                    break;
                }
                Err(err) => {
                    if !record(Err(err), &mut outcomes, leads.len())? {
                        break;
                    }
                }
            }
        }
        Ok(outcomes)
    }

    async fn push_tasks(&self, tasks: &[TaskPush]) -> Result<Vec<PushOutcome>> {
        let mut outcomes = Vec::with_capacity(tasks.len());
        // Activities already made for each Pipedrive lead or deal, read
        // once each: a task sent again (after a crash before its
        // acknowledgement) updates its activity instead of adding a twin.
        let mut existing: HashMap<String, HashMap<String, u64>> = HashMap::new();
        for push in tasks {
            let person = linked_number(&push.lead, "person");
            let target = match (
                linked_number(&push.lead, "deal"),
                linked(&push.lead, "lead"),
            ) {
                (Some(deal), _) => Some(Target::Deal(deal)),
                (None, Some(id)) => Some(Target::Lead(id.to_owned())),
                (None, None) => None,
            };
            let (Some(person), Some(target)) = (person, target) else {
                outcomes.push(PushOutcome::Retry(format!(
                    "lead {} is not in Pipedrive yet",
                    push.lead.ext_id
                )));
                continue;
            };
            let key = format!("{target:?}");
            let sent = async {
                if !existing.contains_key(&key) {
                    let made = self.activities_of(&target).await?;
                    existing.insert(key.clone(), made);
                }
                let marker = task_marker(&push.task.id);
                let known = existing.get(&key).and_then(|m| m.get(&marker)).copied();
                let id = self
                    .push_task(push, person, &target, known, &marker)
                    .await?;
                if let Some(made) = existing.get_mut(&key) {
                    made.insert(marker, id);
                }
                Ok::<_, Error>(id)
            };
            let sent = sent
                .await
                .map(|id| PushOutcome::Synced(vec![link("activity", id)]));
            if !record(sent, &mut outcomes, tasks.len())? {
                break;
            }
        }
        Ok(outcomes)
    }

    async fn check(&self) -> Result<()> {
        let _: (Value, _) = self
            .http
            .call(Method::GET, "/api/v1/users/me", &[], None)
            .await?;
        Ok(())
    }

    async fn pull_changes(&self, watermark: Option<String>, limit: usize) -> Result<CrmChanges> {
        self.pull(watermark, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_alone_at_fault_is_refused_the_rest_stops_the_call() {
        assert!(matches!(
            outcome_of(Error::NotAllowed("400".into())),
            Ok(PushOutcome::Rejected(_))
        ));
        assert!(outcome_of(Error::RateLimited { retry_after: None }).is_err());
        assert!(outcome_of(Error::Unauthorized("401".into())).is_err());
    }

    #[test]
    fn a_value_already_there_is_not_added_twice_a_new_one_becomes_primary() {
        let theirs = vec![Channel {
            value: "+34 612 345 678".into(),
            primary: true,
            label: Some("mobile".into()),
        }];
        assert_eq!(with_primary(theirs.clone(), "+34612345678"), theirs);
        let added = with_primary(theirs, "+34 600 000 000");
        assert_eq!(added.len(), 2);
        assert!(added[0].primary && !added[1].primary);
        assert_eq!(added[1].label.as_deref(), Some("mobile"), "kept as entered");
    }
}
