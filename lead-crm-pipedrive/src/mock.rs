//! (feature `mock`) A Pipedrive company on a loopback port, for tests of
//! this crate and of the programs that embed it, following the contract in
//! `../shared/crm-specs/CONTRACTS.md` §2 and the mock checklist (§4), with
//! field names and status codes from the official OpenAPI documents
//! (`lead-crm-pipedrive-spec/openapi/`):
//!
//! - v2 persons (search by e-mail, create, read, change, list changed since
//!   with cursor paging), deals and activities (the same, without search):
//!   creates answer **200**;
//! - v2 lead → deal conversion (a job polled for its status; the lead's
//!   activities and notes move to the new deal, the lead is deleted);
//! - v1 leads (UUID ids, create **201**, `start` paging, archived ones
//!   listed apart), notes (create, list, update), users and `users/me`;
//! - v1 webhooks (create **201**, list, delete), and the payloads Pipedrive
//!   would deliver for them ([`Company::webhook_v2`],
//!   [`Company::webhook_v1`]), for tests that play its webhook sender;
//! - the API token in `x-api-token` (or `Authorization: Bearer`), else the
//!   `401` envelope;
//! - the burst window (`x-ratelimit-*`) and the daily token budget
//!   (`x-daily-ratelimit-token-*`) on every answer, and `429` when either is
//!   spent;
//! - queued failures, a slow company (`delay_ms`), and a record of every
//!   request as received, for validation against the OpenAPI documents.
//!
//! Every request is served by one handler that routes by hand, so that every
//! request is recorded the same way and no input (bad JSON, a non-numeric
//! id, an unknown path) gets an answer other than Pipedrive's envelope.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

/// The API token the mock accepts (in `x-api-token`, or as a Bearer token).
pub const API_TOKEN: &str = "pd-test-token";

/// The burst budget of a 2 s window [`Mock::start`] sets: the API-token
/// limit of the Lite plan (CONTRACTS §2.9), the smallest a client meets.
pub const DEFAULT_BUDGET: u64 = 20;

/// The daily token budget [`Mock::start`] sets: 30 000, one Lite seat.
pub const DEFAULT_DAILY_TOKENS: u64 = 30_000;

/// The length of the rolling burst window.
const WINDOW: Duration = Duration::from_secs(2);

/// The company's clock when [`Company::clock`] is `None`: the tests'
/// manual clock, so that stamps are the same on every run.
const EPOCH: &str = "2026-11-23T12:00:00Z";

/// The page size of a list call without `limit`, and the largest allowed
/// (Pipedrive: "If not provided, 100 items will be returned … a maximum
/// value of 500 is allowed").
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 500;

/// What the company holds and how it behaves. [`Company::default`] is an
/// empty company with no budget; [`Mock::start`] seeds the admin user and
/// the default budgets.
#[derive(Default)]
pub struct Company {
    /// Persons by id, in the v2 shape (`id`, `name`, `first_name`,
    /// `last_name`, `emails`/`phones` as `[{value, primary, label}]`,
    /// `owner_id`, `org_id`, `add_time`, `update_time` in RFC 3339,
    /// `is_deleted`, `visible_to`, `custom_fields`, …).
    pub persons: BTreeMap<u64, Value>,
    /// Leads by UUID string id, in the v1 shape (`title`, `person_id`,
    /// `owner_id`, `value`, `expected_close_date`, `label_ids`,
    /// `is_archived`, `add_time`, `update_time`, `origin_id`, …).
    pub leads: BTreeMap<String, Value>,
    /// Deals by id, in the v2 shape.
    pub deals: BTreeMap<u64, Value>,
    /// Activities by id, in the v2 shape.
    pub activities: BTreeMap<u64, Value>,
    /// Notes by id, in the v1 shape (`content`, `lead_id`, `deal_id`,
    /// `person_id`, `org_id`, `user_id`, `add_time`/`update_time` as
    /// `YYYY-MM-DD HH:MM:SS`, `active_flag`, …).
    pub notes: BTreeMap<u64, Value>,
    /// Webhooks by id, in the v1 shape (`subscription_url`,
    /// `event_action`, `event_object`, `version`, `user_id`, `is_active`,
    /// `type`, `http_auth_user`, `http_auth_password`, `name`, …).
    pub webhooks: BTreeMap<u64, Value>,
    /// How many status polls of a lead conversion answer `running` before
    /// the conversion completes: 0 (the default) lets the first poll see
    /// `completed`. The deal is created at the poll that completes it.
    pub convert_polls: u32,
    /// Users, as v1 user objects (`id`, `name`, `email`, `active_flag`,
    /// `is_deleted`, …): owners must be one of them. The first is the
    /// token's user (`users/me`, the default owner).
    pub users: Vec<Value>,
    /// Every authenticated call to a known endpoint, as `METHOD path`
    /// (`GET /api/v2/persons/search`, without the query), including the
    /// ones answered `429` or with a queued failure.
    pub calls: Vec<String>,
    /// Every request as received, authenticated or not, for validation
    /// against the OpenAPI documents.
    pub requests: Vec<Recorded>,
    /// Successful creates and updates per record, keyed `person/<id>`,
    /// `lead/<uuid>`, `activity/<id>`, `deal/<id>`, `note/<id>`,
    /// `webhook/<id>` (a record written twice was sent twice); and
    /// `convert/<lead uuid>` once per accepted request to convert that lead
    /// (the deal it made counts as `deal/<id>` when the conversion
    /// completes).
    pub writes: BTreeMap<String, u32>,
    /// Answers for the next data calls, in order (status, body), before
    /// any work; they carry the rate-limit headers.
    pub failures: VecDeque<(StatusCode, Value)>,
    /// Calls allowed in one 2 s window (`x-ratelimit-limit`); the next one
    /// is answered `429` with `Retry-After`.
    pub budget: u64,
    /// The daily token budget (`x-daily-ratelimit-token-limit`).
    pub daily_tokens: u64,
    /// Tokens spent today, by each endpoint's `x-token-cost` (v2: get 1,
    /// list 10, create/update 5, search 20; v1: get 2, list 20,
    /// create/update 10). Set it to play a company near its budget; once
    /// it reaches `daily_tokens` every call is answered `429` with
    /// `x-daily-ratelimit-token-remaining: 0`.
    pub tokens_used: u64,
    /// E-mails (lower case) whose persons the company refuses to create or
    /// change (`400`, as a validation rule or a blocked address would):
    /// a record at fault on its own.
    pub refused_emails: std::collections::BTreeSet<String>,
    /// Calls answered `429` because the burst window was spent (not the
    /// queued failures): a client that paces itself keeps it at 0.
    pub limited: u64,
    /// The company's "now" for `add_time`/`update_time`: every write is
    /// stamped with exactly this time when set (the test moves it). When
    /// `None`, the first write is stamped 2026-11-23T12:00:00Z and each
    /// write one second later, so stamps differ and order the writes.
    pub clock: Option<DateTime<Utc>>,
    /// Milliseconds each request waits before it is answered (without
    /// holding the lock): a slow company, to stop a client mid-batch.
    pub delay_ms: u64,
    /// Writes stamped on the default clock so far.
    tick: i64,
    /// Leads created so far (the serial in their UUID).
    lead_serial: u64,
    /// Lead conversions by conversion id.
    conversions: BTreeMap<String, Conversion>,
    /// Where the current burst window started and the calls in it.
    window: Option<(Instant, u64)>,
}

/// One request as the mock received it; the same fields as
/// `lead_crm_pipedrive_spec::Recorded`, so a test converts it field by
/// field and validates it against the official documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The HTTP method (`GET`, `POST`, `PATCH`).
    pub method: String,
    /// The path as sent, without the query (`/api/v2/persons/search`).
    pub path: String,
    /// The query pairs in order, percent-decoded.
    pub query: Vec<(String, String)>,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The JSON body; `None` when the body was empty or not JSON.
    pub body: Option<Value>,
}

/// A lead conversion job (`POST /api/v2/leads/{id}/convert/deal`).
struct Conversion {
    /// The lead being converted.
    lead_id: String,
    /// The stage the deal goes to (from the request, else the first).
    stage_id: u64,
    /// The deal's pipeline.
    pipeline_id: u64,
    /// Status polls answered so far.
    polls: u32,
    /// `running`, `completed` or `failed` once polled.
    status: &'static str,
    /// The deal made, once completed.
    deal_id: Option<u64>,
}

impl Company {
    /// A change made in Pipedrive (by a user in the app): the person `id`
    /// gets `fields` (top-level keys replaced) and a new `update_time`;
    /// a new `name` also sets `first_name`/`last_name` unless given. Not
    /// counted in [`Company::writes`], which counts the API's writes.
    ///
    /// # Panics
    ///
    /// When the person does not exist: a mistake in the test.
    pub fn change_person(&mut self, id: u64, fields: Value) {
        let stamp = v2_time(self.now());
        let person = self
            .persons
            .get_mut(&id)
            .expect("change_person: a stored person");
        merge(person, &fields);
        if fields.get("name").is_some() && fields.get("first_name").is_none() {
            let (first, last) = split_name(person["name"].as_str().unwrap_or_default());
            person["first_name"] = json!(first);
            person["last_name"] = json!(last);
        }
        person["update_time"] = json!(stamp);
    }

    /// A change made in Pipedrive: the lead `id` gets `fields` (top-level
    /// keys replaced) and a new `update_time`. Not counted in
    /// [`Company::writes`].
    ///
    /// # Panics
    ///
    /// When the lead does not exist: a mistake in the test.
    pub fn change_lead(&mut self, id: &str, fields: Value) {
        let stamp = v1_lead_time(self.now());
        let lead = self.leads.get_mut(id).expect("change_lead: a stored lead");
        merge(lead, &fields);
        lead["update_time"] = json!(stamp);
    }

    /// A change made in Pipedrive: the deal `id` gets `fields` (top-level
    /// keys replaced) and a new `update_time`; a new `status` sets
    /// `won_time`/`lost_time` and `close_time` as Pipedrive does (`open`
    /// clears `close_time`). Not counted in [`Company::writes`].
    ///
    /// # Panics
    ///
    /// When the deal does not exist: a mistake in the test.
    pub fn change_deal(&mut self, id: u64, fields: Value) {
        let at = self.now();
        let deal = self.deals.get_mut(&id).expect("change_deal: a stored deal");
        let status_before = deal["status"].clone();
        merge(deal, &fields);
        close_times(deal, &status_before, at);
        deal["update_time"] = json!(v2_time(at));
    }

    /// A user archives the lead `id` in Pipedrive: `is_archived` becomes
    /// `true` and `update_time` new, so that it leaves `GET /api/v1/leads`
    /// for `GET /api/v1/leads/archived`. Not counted in
    /// [`Company::writes`].
    ///
    /// # Panics
    ///
    /// When the lead does not exist: a mistake in the test.
    pub fn archive_lead(&mut self, id: &str) {
        let stamp = v1_lead_time(self.now());
        let lead = self.leads.get_mut(id).expect("archive_lead: a stored lead");
        lead["is_archived"] = json!(true);
        lead["update_time"] = json!(stamp);
    }

    /// Adds an active user (or replaces the one with this id), so that it
    /// can own records; its name is the e-mail's local part.
    pub fn add_user(&mut self, id: u64, email: &str) {
        let name = email.split('@').next().unwrap_or(email);
        let user = json!({
            "id": id,
            "name": name,
            "email": email,
            "default_currency": "EUR",
            "locale": "en_US",
            "lang": 1,
            "phone": null,
            "activated": true,
            "last_login": "2026-11-23 08:00:00",
            "created": "2026-01-05 09:00:00",
            "modified": "2026-01-05 09:00:00",
            "has_created_company": self.users.is_empty(),
            "access": [{"app": "sales", "admin": self.users.is_empty(), "permission_set_id": "mock-permission-set"}],
            "active_flag": true,
            "timezone_name": "Europe/Tallinn",
            "timezone_offset": "+02:00",
            "role_id": 1,
            "icon_url": null,
            "is_you": self.users.is_empty(),
            "is_deleted": false,
        });
        match self.users.iter_mut().find(|u| u["id"] == json!(id)) {
            Some(existing) => *existing = user,
            None => self.users.push(user),
        }
    }

    /// The time of the next write (see [`Company::clock`]).
    fn now(&mut self) -> DateTime<Utc> {
        if let Some(at) = self.clock {
            return at;
        }
        let epoch = DateTime::parse_from_rfc3339(EPOCH)
            .expect("the epoch is RFC 3339")
            .to_utc();
        let at = epoch + chrono::Duration::seconds(self.tick);
        self.tick += 1;
        at
    }

    /// The id of the token's user: the first user (1 when there is none).
    fn me(&self) -> u64 {
        self.users
            .first()
            .and_then(|u| u["id"].as_u64())
            .unwrap_or(1)
    }

    fn user_exists(&self, id: u64) -> bool {
        self.users
            .iter()
            .any(|u| u["id"].as_u64() == Some(id) && u["is_deleted"] != json!(true))
    }

    fn person_exists(&self, id: u64) -> bool {
        self.persons
            .get(&id)
            .is_some_and(|p| p["is_deleted"] != json!(true))
    }

    fn count_write(&mut self, key: String) {
        *self.writes.entry(key).or_default() += 1;
    }
}

/// The company, shared by the mock's handler and the test.
pub type Shared = Arc<Mutex<Company>>;

/// A running mock: its base URL and its state.
pub struct Mock {
    /// Where it listens (`http://127.0.0.1:port`): the base URL, with the
    /// API under `/api/v1/…` and `/api/v2/…`.
    pub url: String,
    /// Its state.
    pub company: Shared,
}

impl Mock {
    /// Starts the mock on a free loopback port, with one admin user (id 1,
    /// `admin@company.com`), a burst budget of [`DEFAULT_BUDGET`] and a
    /// daily budget of [`DEFAULT_DAILY_TOKENS`].
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound: the test cannot run.
    pub async fn start() -> Mock {
        let mut seeded = Company {
            budget: DEFAULT_BUDGET,
            daily_tokens: DEFAULT_DAILY_TOKENS,
            ..Company::default()
        };
        seeded.add_user(1, "admin@company.com");
        if let Some(admin) = seeded.users.first_mut() {
            admin["name"] = json!("Admin");
        }
        let company: Shared = Arc::new(Mutex::new(seeded));
        let app = Router::new().fallback(handle).with_state(company.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            // The server ends with the test's runtime; an error here has
            // no one left to report to.
            let _ = axum::serve(listener, app).await;
        });
        Mock { url, company }
    }

    /// The company's state, to arrange and to check.
    pub fn company(&self) -> MutexGuard<'_, Company> {
        lock(&self.company)
    }
}

/// The lock, also after a panicking test thread poisoned it (the state is
/// still consistent: every change is made in one step under the lock).
fn lock(company: &Shared) -> MutexGuard<'_, Company> {
    company.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------
// Requests, routes, the gate

/// A request as the handler sees it.
struct Request {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Option<Value>,
    /// A body was sent but is not JSON (or not a JSON content type).
    unreadable: Option<&'static str>,
}

impl Request {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer before its headers: status and JSON body.
type Answer = (StatusCode, Value);

/// The endpoints the mock serves.
enum Route {
    SearchPersons,
    ListPersons,
    AddPerson,
    GetPerson(String),
    PatchPerson(String),
    ListDeals,
    AddDeal,
    GetDeal(String),
    PatchDeal(String),
    AddActivity,
    ListActivities,
    GetActivity(String),
    PatchActivity(String),
    ListLeads,
    ListArchivedLeads,
    AddLead,
    GetLead(String),
    PatchLead(String),
    /// The lead's id.
    ConvertLead(String),
    /// The lead's id and the conversion's.
    ConversionStatus(String, String),
    ListNotes,
    AddNote,
    UpdateNote(String),
    ListWebhooks,
    AddWebhook,
    DeleteWebhook(String),
    Users,
    Me,
}

impl Route {
    fn find(method: &Method, path: &str) -> Option<Route> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let id = |s: &str| s.to_owned();
        Some(match (method.as_str(), segments.as_slice()) {
            ("GET", ["api", "v2", "persons", "search"]) => Route::SearchPersons,
            ("GET", ["api", "v2", "persons"]) => Route::ListPersons,
            ("POST", ["api", "v2", "persons"]) => Route::AddPerson,
            ("GET", ["api", "v2", "persons", i]) => Route::GetPerson(id(i)),
            ("PATCH", ["api", "v2", "persons", i]) => Route::PatchPerson(id(i)),
            ("GET", ["api", "v2", "deals"]) => Route::ListDeals,
            ("POST", ["api", "v2", "deals"]) => Route::AddDeal,
            ("GET", ["api", "v2", "deals", i]) => Route::GetDeal(id(i)),
            ("PATCH", ["api", "v2", "deals", i]) => Route::PatchDeal(id(i)),
            ("POST", ["api", "v2", "activities"]) => Route::AddActivity,
            ("GET", ["api", "v2", "activities"]) => Route::ListActivities,
            ("GET", ["api", "v2", "activities", i]) => Route::GetActivity(id(i)),
            ("PATCH", ["api", "v2", "activities", i]) => Route::PatchActivity(id(i)),
            ("GET", ["api", "v1", "leads"]) => Route::ListLeads,
            ("GET", ["api", "v1", "leads", "archived"]) => Route::ListArchivedLeads,
            ("POST", ["api", "v1", "leads"]) => Route::AddLead,
            ("GET", ["api", "v1", "leads", i]) => Route::GetLead(id(i)),
            ("PATCH", ["api", "v1", "leads", i]) => Route::PatchLead(id(i)),
            ("POST", ["api", "v2", "leads", i, "convert", "deal"]) => Route::ConvertLead(id(i)),
            ("GET", ["api", "v2", "leads", i, "convert", "status", c]) => {
                Route::ConversionStatus(id(i), id(c))
            }
            ("GET", ["api", "v1", "notes"]) => Route::ListNotes,
            ("POST", ["api", "v1", "notes"]) => Route::AddNote,
            ("PUT", ["api", "v1", "notes", i]) => Route::UpdateNote(id(i)),
            ("GET", ["api", "v1", "webhooks"]) => Route::ListWebhooks,
            ("POST", ["api", "v1", "webhooks"]) => Route::AddWebhook,
            ("DELETE", ["api", "v1", "webhooks", i]) => Route::DeleteWebhook(id(i)),
            ("GET", ["api", "v1", "users"]) => Route::Users,
            ("GET", ["api", "v1", "users", "me"]) => Route::Me,
            _ => return None,
        })
    }

    /// The endpoint's `x-token-cost` in the OpenAPI documents.
    fn cost(&self) -> u64 {
        match self {
            Route::GetPerson(_)
            | Route::GetDeal(_)
            | Route::GetActivity(_)
            | Route::ConversionStatus(..) => 1,
            Route::ListPersons | Route::ListDeals | Route::ListActivities => 10,
            Route::AddPerson
            | Route::PatchPerson(_)
            | Route::AddDeal
            | Route::PatchDeal(_)
            | Route::AddActivity
            | Route::PatchActivity(_) => 5,
            Route::SearchPersons => 20,
            Route::ConvertLead(_) => 40,
            Route::GetLead(_) | Route::Me => 2,
            Route::ListLeads | Route::ListNotes | Route::Users => 20,
            // The v1 document's costs: archived leads 40, webhooks listed
            // for 10 and deleted for 6.
            Route::ListArchivedLeads => 40,
            Route::ListWebhooks => 10,
            Route::DeleteWebhook(_) => 6,
            Route::AddLead
            | Route::PatchLead(_)
            | Route::AddNote
            | Route::UpdateNote(_)
            | Route::AddWebhook => 10,
        }
    }

    /// Whether the endpoint reads a JSON body.
    fn writes(&self) -> bool {
        matches!(
            self,
            Route::AddPerson
                | Route::PatchPerson(_)
                | Route::AddDeal
                | Route::PatchDeal(_)
                | Route::AddActivity
                | Route::PatchActivity(_)
                | Route::AddLead
                | Route::PatchLead(_)
                | Route::ConvertLead(_)
                | Route::AddNote
                | Route::UpdateNote(_)
                | Route::AddWebhook
        )
    }
}

/// The one handler: records the request, waits `delay_ms`, then answers
/// under the lock.
async fn handle(
    State(company): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let query = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let json_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    let (body, unreadable) = if raw.iter().all(u8::is_ascii_whitespace) {
        (None, None)
    } else {
        match serde_json::from_slice::<Value>(&raw) {
            Ok(_) if !json_type => (
                None,
                Some("the body must be JSON (Content-Type: application/json)"),
            ),
            Ok(value) => (Some(value), None),
            Err(_) => (None, Some("the body is not valid JSON")),
        }
    };
    let request = Request {
        method,
        path: uri.path().to_owned(),
        query,
        headers,
        body,
        unreadable,
    };
    let delay = {
        let mut company = lock(&company);
        company.requests.push(Recorded {
            method: request.method.as_str().to_owned(),
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request
                .headers
                .iter()
                .map(|(k, v)| {
                    let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (k.as_str().to_ascii_lowercase(), value)
                })
                .collect(),
            body: request.body.clone(),
        });
        company.delay_ms
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let mut company = lock(&company);
    company.serve(Instant::now(), &request)
}

/// Whether the request carries the API token.
fn authorised(request: &Request) -> bool {
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    header("x-api-token") == Some(API_TOKEN)
        || header("authorization").and_then(|v| v.strip_prefix("Bearer ")) == Some(API_TOKEN)
        // Legacy v1 usage (CONTRACTS §2.1: "the mock may accept it").
        || request.param("api_token") == Some(API_TOKEN)
}

/// What the answer's rate-limit headers say.
struct Limits {
    limit: u64,
    remaining: u64,
    reset: u64,
    daily_limit: u64,
    daily_remaining: u64,
    retry_after: Option<u64>,
}

impl Company {
    /// Authenticates, counts and paces the call, plays a queued failure,
    /// then does the endpoint's work.
    fn serve(&mut self, now: Instant, request: &Request) -> Response {
        if !authorised(request) {
            let body = json!({
                "success": false,
                "error": "unauthorized access",
                "errorCode": 401,
                "error_info": "Please check developers.pipedrive.com",
            });
            return self.respond(now, (StatusCode::UNAUTHORIZED, body), None);
        }
        let Some(route) = Route::find(&request.method, &request.path) else {
            let answer = error(
                StatusCode::NOT_FOUND,
                &format!("Unknown method {} {}", request.method, request.path),
            );
            return self.respond(now, answer, None);
        };
        self.calls
            .push(format!("{} {}", request.method, request.path));
        // The burst window: starts at the first call and rolls over 2 s
        // later.
        let (start, used) = match self.window {
            Some((start, used)) if now < start + WINDOW => (start, used),
            _ => (now, 0),
        };
        if used >= self.budget {
            self.window = Some((start, used));
            self.limited += 1;
            let reset = reset_secs(start, now);
            let body = json!({"success": false, "error": "Request over limit", "errorCode": 429});
            return self.respond(now, (StatusCode::TOO_MANY_REQUESTS, body), Some(reset));
        }
        self.window = Some((start, used + 1));
        if self.tokens_used >= self.daily_tokens {
            let body = json!({
                "success": false,
                "error": "Daily token budget exceeded",
                "errorCode": 429,
            });
            let until_midnight = secs_to_midnight(self.clock.unwrap_or_else(Utc::now));
            return self.respond(
                now,
                (StatusCode::TOO_MANY_REQUESTS, body),
                Some(until_midnight),
            );
        }
        if let Some(failure) = self.failures.pop_front() {
            return self.respond(now, failure, None);
        }
        self.tokens_used = self.tokens_used.saturating_add(route.cost());
        let answer = if route.writes() && request.unreadable.is_some() {
            let message = request.unreadable.unwrap_or_default();
            if message.contains("Content-Type") {
                error(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
            } else {
                bad(message)
            }
        } else {
            self.work(route, request).unwrap_or_else(|refused| refused)
        };
        self.respond(now, answer, None)
    }

    fn limits(&self, now: Instant) -> Limits {
        let (remaining, reset) = match self.window {
            Some((start, used)) if now < start + WINDOW => {
                (self.budget.saturating_sub(used), reset_secs(start, now))
            }
            _ => (self.budget, WINDOW.as_secs()),
        };
        Limits {
            limit: self.budget,
            remaining,
            reset,
            daily_limit: self.daily_tokens,
            daily_remaining: self.daily_tokens.saturating_sub(self.tokens_used),
            retry_after: None,
        }
    }

    /// The answer with its rate-limit headers (and `Retry-After` when
    /// given).
    fn respond(&self, now: Instant, (status, body): Answer, retry_after: Option<u64>) -> Response {
        let limits = Limits {
            retry_after,
            ..self.limits(now)
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        let mut set = |name: &'static str, value: u64| {
            headers.insert(name, HeaderValue::from(value));
        };
        set("x-ratelimit-limit", limits.limit);
        set("x-ratelimit-remaining", limits.remaining);
        set("x-ratelimit-reset", limits.reset);
        set("x-daily-ratelimit-token-limit", limits.daily_limit);
        set("x-daily-ratelimit-token-remaining", limits.daily_remaining);
        if let Some(after) = limits.retry_after {
            set("retry-after", after);
        }
        response
    }

    fn work(&mut self, route: Route, request: &Request) -> Result<Answer, Answer> {
        match route {
            Route::SearchPersons => self.search_persons(request),
            Route::ListPersons => self.list_persons(request),
            Route::AddPerson => self.add_person(object(request)?),
            Route::GetPerson(id) => {
                let id = numeric_id(&id)?;
                match self.persons.get(&id) {
                    Some(p) if p["is_deleted"] != json!(true) => Ok(ok(p.clone())),
                    _ => Err(not_found("Person not found")),
                }
            }
            Route::PatchPerson(id) => self.patch_person(numeric_id(&id)?, object(request)?),
            Route::ListDeals => self.list_deals(request),
            Route::AddDeal => self.add_deal(object(request)?),
            Route::GetDeal(id) => {
                let id = numeric_id(&id)?;
                let deal = self
                    .deals
                    .get(&id)
                    .ok_or_else(|| not_found("Deal not found"))?;
                Ok(ok(deal.clone()))
            }
            Route::PatchDeal(id) => self.patch_deal(numeric_id(&id)?, object(request)?),
            Route::AddActivity => self.add_activity(object(request)?),
            Route::ListActivities => self.list_activities(request),
            Route::GetActivity(id) => {
                let id = numeric_id(&id)?;
                let activity = self
                    .activities
                    .get(&id)
                    .ok_or_else(|| not_found("Activity not found"))?;
                Ok(ok(activity.clone()))
            }
            Route::PatchActivity(id) => self.patch_activity(numeric_id(&id)?, object(request)?),
            Route::ListLeads => self.list_leads(request, false),
            Route::ListArchivedLeads => self.list_leads(request, true),
            Route::AddLead => self.add_lead(object(request)?),
            Route::GetLead(id) => {
                let lead = self.leads.get(&id).ok_or_else(lead_not_found)?;
                Ok(ok(lead.clone()))
            }
            Route::PatchLead(id) => self.patch_lead(&id, object(request)?),
            Route::ConvertLead(id) => {
                // The body is optional: none converts to the first stage.
                let empty = Map::new();
                let body = match &request.body {
                    None => &empty,
                    Some(_) => object(request)?,
                };
                self.convert_lead(&id, body)
            }
            Route::ConversionStatus(lead, conversion) => self.conversion_status(&lead, &conversion),
            Route::ListNotes => self.list_notes(request),
            Route::AddNote => self.add_note(object(request)?),
            Route::UpdateNote(id) => self.update_note(numeric_id(&id)?, object(request)?),
            Route::ListWebhooks => Ok(webhook_ok(
                StatusCode::OK,
                Value::Array(self.webhooks.values().cloned().collect()),
            )),
            Route::AddWebhook => self.add_webhook(object(request)?),
            Route::DeleteWebhook(id) => {
                let id = numeric_id(&id)?;
                match self.webhooks.remove(&id) {
                    Some(_) => Ok(webhook_ok(StatusCode::OK, json!({"id": id}))),
                    None => Err(webhook_error(StatusCode::NOT_FOUND, "id", "not found")),
                }
            }
            Route::Users => Ok(ok(Value::Array(self.users.clone()))),
            Route::Me => {
                let me = self.me();
                let mut user = self
                    .users
                    .iter()
                    .find(|u| u["id"].as_u64() == Some(me))
                    .cloned()
                    .ok_or_else(|| not_found("User not found"))?;
                user["company_id"] = json!(1);
                user["company_name"] = json!("Mock Company");
                user["company_domain"] = json!("mock");
                user["company_country"] = json!("EE");
                user["company_industry"] = json!("IT");
                user["language"] = json!({"language_code": "en", "country_code": "US"});
                Ok(ok(user))
            }
        }
    }
}

/// Whole seconds to the end of the window that started at `start`, at
/// least 1.
fn reset_secs(start: Instant, now: Instant) -> u64 {
    let left = (start + WINDOW).saturating_duration_since(now);
    left.as_secs_f64().ceil().max(1.0) as u64
}

/// Seconds to the next UTC midnight (when the daily budget resets), at
/// least 1.
fn secs_to_midnight(now: DateTime<Utc>) -> u64 {
    let tomorrow = now
        .date_naive()
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0));
    tomorrow
        .map(|t| (t.and_utc() - now).num_seconds().max(1) as u64)
        .unwrap_or(86_400)
}

// ---------------------------------------------------------------------------
// Envelopes and field checks

fn ok(data: Value) -> Answer {
    ok_with(data, Value::Null)
}

fn ok_with(data: Value, additional_data: Value) -> Answer {
    (
        StatusCode::OK,
        json!({"success": true, "data": data, "additional_data": additional_data}),
    )
}

fn created(data: Value) -> Answer {
    (StatusCode::CREATED, ok(data).1)
}

fn error(status: StatusCode, message: &str) -> Answer {
    (
        status,
        json!({
            "success": false,
            "error": message,
            "errorCode": status.as_u16(),
            "error_info": "Please check developers.pipedrive.com",
            "data": null,
            "additional_data": null,
        }),
    )
}

fn bad(message: &str) -> Answer {
    error(StatusCode::BAD_REQUEST, message)
}

fn not_found(message: &str) -> Answer {
    error(StatusCode::NOT_FOUND, message)
}

/// v1's missing-lead answer (CONTRACTS §2.3).
fn lead_not_found() -> Answer {
    (
        StatusCode::NOT_FOUND,
        json!({
            "success": false,
            "error": "requested lead not found",
            "error_info": "Object was not found.",
            "data": null,
            "additional_data": null,
        }),
    )
}

/// The v2 conversion endpoints' missing-entity answer (their 404 example
/// in `openapi-v2.yaml`): the lead envelope with its own message.
fn entity_not_found() -> Answer {
    (
        StatusCode::NOT_FOUND,
        json!({
            "success": false,
            "error": "Entity was not found",
            "error_info": "Object was not found.",
            "data": null,
            "additional_data": null,
        }),
    )
}

/// The webhooks endpoints' envelope (`status` beside `success`).
fn webhook_ok(status: StatusCode, data: Value) -> Answer {
    (
        status,
        json!({"status": "ok", "success": true, "data": data}),
    )
}

/// The webhooks endpoints' refusal: the errors by field (CONTRACTS §2.3).
fn webhook_error(status: StatusCode, field: &str, message: &str) -> Answer {
    (
        status,
        json!({"status": "error", "success": false, "errors": {field: [message]}}),
    )
}

/// The body as a JSON object (a write without one is refused).
fn object(request: &Request) -> Result<&Map<String, Value>, Answer> {
    request
        .body
        .as_ref()
        .and_then(Value::as_object)
        .ok_or_else(|| bad("the body must be a JSON object"))
}

fn numeric_id(id: &str) -> Result<u64, Answer> {
    id.parse()
        .map_err(|_| bad(&format!("id must be a positive integer, got {id:?}")))
}

/// An optional integer field: absent or null is `None`, anything but a
/// non-negative integer is refused.
fn int_field(body: &Map<String, Value>, name: &str) -> Result<Option<u64>, Answer> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(&format!("{name} must be an integer"))),
    }
}

fn str_field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Answer> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| bad(&format!("{name} must be a string"))),
    }
}

fn bool_field(body: &Map<String, Value>, name: &str) -> Result<Option<bool>, Answer> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| bad(&format!("{name} must be a boolean"))),
    }
}

/// A required, non-empty string field.
fn required_str<'a>(body: &'a Map<String, Value>, name: &str) -> Result<&'a str, Answer> {
    match str_field(body, name)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(bad(&format!("{name} is required"))),
    }
}

/// An optional `YYYY-MM-DD` date field.
fn date_field(body: &Map<String, Value>, name: &str) -> Result<(), Answer> {
    if let Some(s) = str_field(body, name)? {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| bad(&format!("{name} must be a date YYYY-MM-DD")))?;
    }
    Ok(())
}

/// An optional `HH:MM` or `HH:MM:SS` field, as Pipedrive answers it
/// (`HH:MM:SS`).
fn time_field(body: &Map<String, Value>, name: &str) -> Result<Option<String>, Answer> {
    let Some(s) = str_field(body, name)? else {
        return Ok(None);
    };
    let parsed = chrono::NaiveTime::parse_from_str(s, "%H:%M:%S")
        .or_else(|_| chrono::NaiveTime::parse_from_str(s, "%H:%M"))
        .map_err(|_| bad(&format!("{name} must be a time HH:MM")))?;
    Ok(Some(parsed.format("%H:%M:%S").to_string()))
}

fn array_field<'a>(
    body: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a Vec<Value>>, Answer> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_array()
            .map(Some)
            .ok_or_else(|| bad(&format!("{name} must be an array"))),
    }
}

/// An owner that must be a user of the company.
fn owner_field(company: &Company, body: &Map<String, Value>) -> Result<Option<u64>, Answer> {
    let owner = int_field(body, "owner_id")?;
    if let Some(id) = owner
        && !company.user_exists(id)
    {
        return Err(bad(&format!("owner_id {id}: user not found")));
    }
    Ok(owner)
}

/// A person reference that must exist.
fn person_ref(company: &Company, body: &Map<String, Value>) -> Result<Option<u64>, Answer> {
    let person = int_field(body, "person_id")?;
    if let Some(id) = person
        && !company.person_exists(id)
    {
        return Err(bad(&format!("person_id {id}: person not found")));
    }
    Ok(person)
}

/// `emails`/`phones` as Pipedrive stores them: each item needs a string
/// `value`; `label` defaults to `work`; when none is primary the first is.
fn contact_items(body: &Map<String, Value>, name: &str) -> Result<Option<Value>, Answer> {
    let Some(items) = array_field(body, name)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let fields = item
            .as_object()
            .ok_or_else(|| bad(&format!("{name} items must be objects with a value")))?;
        let value = fields
            .get("value")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(&format!("{name} items need a string value")))?;
        let primary = bool_field(fields, "primary")?.unwrap_or(false);
        let label = str_field(fields, "label")?.unwrap_or("work");
        out.push(json!({"value": value, "primary": primary, "label": label}));
    }
    if !out.iter().any(|i| i["primary"] == json!(true))
        && let Some(first) = out.first_mut()
    {
        first["primary"] = json!(true);
    }
    Ok(Some(Value::Array(out)))
}

/// Top-level keys of `fields` replace those of `into`.
fn merge(into: &mut Value, fields: &Value) {
    if let (Some(into), Some(fields)) = (into.as_object_mut(), fields.as_object()) {
        for (k, v) in fields {
            into.insert(k.clone(), v.clone());
        }
    }
}

fn split_name(name: &str) -> (String, String) {
    let name = name.trim();
    match name.split_once(char::is_whitespace) {
        Some((first, last)) => (first.to_owned(), last.trim().to_owned()),
        None => (name.to_owned(), String::new()),
    }
}

/// v2 times: RFC 3339 in seconds (`2026-11-23T12:00:00Z`).
fn v2_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// v1 lead times: milliseconds (`2020-10-14T11:30:36.551Z`).
fn v1_lead_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// v1 note times: `YYYY-MM-DD HH:MM:SS` UTC.
fn v1_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A stored time, as epoch milliseconds (`i64::MIN` when unreadable, so
/// such records sort first and match no `updated_since`).
fn millis(value: &Value) -> i64 {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map_or(i64::MIN, |t| t.timestamp_millis())
}

fn query_time(request: &Request, name: &str) -> Result<Option<i64>, Answer> {
    request
        .param(name)
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp_millis())
                .map_err(|_| bad(&format!("{name} must be an RFC 3339 time")))
        })
        .transpose()
}

/// `limit`: default 100, 1 to 500.
fn page_size(request: &Request) -> Result<usize, Answer> {
    match request.param("limit") {
        None => Ok(DEFAULT_PAGE),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(bad("limit must be an integer from 1 to 500")),
        },
    }
}

/// An opaque cursor: the hex of the last item's sort key and id.
fn encode_cursor(key: i64, id: u64) -> String {
    format!("{key}:{id}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_cursor(cursor: &str) -> Option<(i64, u64)> {
    if !cursor.is_ascii() || !cursor.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let (key, id) = text.split_once(':')?;
    Some((key.parse().ok()?, id.parse().ok()?))
}

fn next_id<T>(table: &BTreeMap<u64, T>) -> u64 {
    table.keys().next_back().map_or(1, |last| last + 1)
}

/// A v1 time (`YYYY-MM-DD HH:MM:SS` UTC, as notes carry) or an RFC 3339
/// one, as epoch milliseconds (`i64::MIN` when unreadable).
fn v1_millis(value: &Value) -> i64 {
    let Some(s) = value.as_str() else {
        return i64::MIN;
    };
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or_else(|_| millis(value))
}

/// A `YYYY-MM-DD` date as epoch milliseconds at midnight UTC (`i64::MIN`
/// when absent or unreadable).
fn date_millis(value: &Value) -> i64 {
    value
        .as_str()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(i64::MIN, |t| t.and_utc().timestamp_millis())
}

/// An optional integer query parameter.
fn query_id(request: &Request, name: &str) -> Result<Option<u64>, Answer> {
    request
        .param(name)
        .map(|s| {
            s.parse()
                .map_err(|_| bad(&format!("{name} must be an integer")))
        })
        .transpose()
}

/// The v2 list parameters: `sort_by`, `sort_direction`, `limit` and
/// `cursor`.
struct V2List<'a> {
    sort_by: &'a str,
    descending: bool,
    limit: usize,
    after: Option<(i64, u64)>,
}

impl<'a> V2List<'a> {
    /// The parameters, `sort_by` one of `fields` (default `id`).
    fn read(request: &'a Request, fields: &[&str]) -> Result<Self, Answer> {
        let sort_by = request.param("sort_by").unwrap_or("id");
        if !fields.contains(&sort_by) {
            return Err(bad(&format!(
                "sort_by must be one of {}",
                fields.join(", ")
            )));
        }
        let descending = match request.param("sort_direction").unwrap_or("asc") {
            "asc" => false,
            "desc" => true,
            _ => return Err(bad("sort_direction must be asc or desc")),
        };
        let limit = page_size(request)?;
        let after = match request.param("cursor") {
            None => None,
            Some(c) => Some(decode_cursor(c).ok_or_else(|| bad("invalid cursor"))?),
        };
        Ok(V2List {
            sort_by,
            descending,
            limit,
            after,
        })
    }

    /// A record's sort key: its `sort_by` time (or date) in milliseconds,
    /// or its id; then its id.
    fn key(&self, id: u64, record: &Value) -> (i64, u64) {
        match self.sort_by {
            "id" => (i64::try_from(id).unwrap_or(i64::MAX), id),
            "due_date" => (date_millis(&record["due_date"]), id),
            field => (millis(&record[field]), id),
        }
    }

    /// The page of `rows` after the cursor, with `next_cursor` (`null` on
    /// the last page).
    fn page(&self, mut rows: Vec<((i64, u64), &Value)>) -> Answer {
        rows.sort_by_key(|(key, _)| *key);
        if self.descending {
            rows.reverse();
        }
        if let Some(cursor) = self.after {
            rows.retain(|(key, _)| {
                if self.descending {
                    *key < cursor
                } else {
                    *key > cursor
                }
            });
        }
        let more = rows.len() > self.limit;
        rows.truncate(self.limit);
        let next = match rows.last() {
            Some(((key, id), _)) if more => json!(encode_cursor(*key, *id)),
            _ => Value::Null,
        };
        let data: Vec<Value> = rows.into_iter().map(|(_, r)| r.clone()).collect();
        ok_with(Value::Array(data), json!({"next_cursor": next}))
    }
}

/// v1 `start`: default 0.
fn v1_start(request: &Request) -> Result<usize, Answer> {
    match request.param("start") {
        None => Ok(0),
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| bad("start must be a non-negative integer")),
    }
}

/// v1 `sort`: its first `field [ASC|DESC]` (default `id` ascending).
fn v1_sort(request: &Request) -> (&str, bool) {
    let sort = request.param("sort").unwrap_or("id");
    let first = sort.split(',').next().unwrap_or_default().trim();
    match first.split_once(' ') {
        Some((field, dir)) => (field, dir.trim().eq_ignore_ascii_case("desc")),
        None => (first, false),
    }
}

/// The v1 page of `rows` from `start`, with
/// `additional_data.pagination`.
fn v1_page(rows: Vec<&Value>, start: usize, limit: usize) -> Answer {
    let more = rows.len() > start.saturating_add(limit);
    let page: Vec<Value> = rows.into_iter().skip(start).take(limit).cloned().collect();
    let mut pagination = json!({
        "start": start,
        "limit": limit,
        "more_items_in_collection": more,
    });
    if more {
        pagination["next_start"] = json!(start + limit);
    }
    ok_with(Value::Array(page), json!({"pagination": pagination}))
}

/// A deal's close stamps after its `status` changed from `status_before`,
/// as Pipedrive sets them: `won_time` or `lost_time` and `close_time` at
/// `at`; reopened, `close_time` cleared.
fn close_times(deal: &mut Value, status_before: &Value, at: DateTime<Utc>) {
    if deal["status"] == *status_before {
        return;
    }
    let closed = json!(v2_time(at));
    match deal["status"].as_str() {
        Some("won") => deal["won_time"] = closed.clone(),
        Some("lost") => deal["lost_time"] = closed.clone(),
        _ => {}
    }
    deal["close_time"] = if deal["status"] == json!("open") {
        Value::Null
    } else {
        closed
    };
}

/// A new deal in the v2 shape, stamped `stamp`, owned and made by `me`,
/// open in the first stage of pipeline 1.
fn deal_template(id: u64, stamp: &str, me: u64) -> Value {
    json!({
        "id": id,
        "title": null,
        "creator_user_id": me,
        "owner_id": me,
        "value": 0,
        "person_id": null,
        "org_id": null,
        "stage_id": 1,
        "pipeline_id": 1,
        "currency": "EUR",
        "add_time": stamp,
        "update_time": stamp,
        "stage_change_time": null,
        "status": "open",
        "is_deleted": false,
        "is_archived": false,
        "archive_time": null,
        "probability": null,
        "lost_reason": null,
        "visible_to": 3,
        "close_time": null,
        "won_time": null,
        "lost_time": null,
        "expected_close_date": null,
        "label_ids": [],
        "origin_id": null,
        "custom_fields": {},
    })
}

// ---------------------------------------------------------------------------
// Persons (v2)

impl Company {
    fn search_persons(&self, request: &Request) -> Result<Answer, Answer> {
        let term = request.param("term").unwrap_or_default().trim().to_owned();
        let exact = matches!(request.param("exact_match"), Some("true" | "1"));
        let needed = if exact { 1 } else { 2 };
        if term.chars().count() < needed {
            return Err(bad(&format!(
                "term must be at least {needed} characters long"
            )));
        }
        let fields: Vec<&str> = match request.param("fields") {
            Some(list) => list.split(',').map(str::trim).collect(),
            None => vec!["name", "email", "phone", "notes", "custom_fields"],
        };
        let limit = page_size(request)?;
        let offset = match request.param("cursor") {
            None => 0,
            Some(c) => decode_cursor(c)
                .map(|(offset, _)| usize::try_from(offset).unwrap_or(0))
                .ok_or_else(|| bad("invalid cursor"))?,
        };
        let wanted = term.to_lowercase();
        let hit = |candidate: &str| {
            let candidate = candidate.to_lowercase();
            if exact {
                candidate == wanted
            } else {
                candidate.contains(&wanted)
            }
        };
        let values = |p: &Value, name: &str| -> Vec<String> {
            p[name]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i["value"].as_str().or_else(|| i.as_str()))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let matches: Vec<Value> = self
            .persons
            .values()
            .filter(|p| p["is_deleted"] != json!(true))
            .filter(|p| {
                (fields.contains(&"name") && hit(p["name"].as_str().unwrap_or_default()))
                    || (fields.contains(&"email") && values(p, "emails").iter().any(|e| hit(e)))
                    || (fields.contains(&"phone") && values(p, "phones").iter().any(|e| hit(e)))
            })
            .map(|p| {
                let organization = match p["org_id"].as_u64() {
                    Some(id) => json!({"id": id, "name": null, "address": null}),
                    None => Value::Null,
                };
                json!({
                    "result_score": if exact { 1.0 } else { 0.5 },
                    "item": {
                        "id": p["id"],
                        "type": "person",
                        "name": p["name"],
                        "phones": values(p, "phones"),
                        "emails": values(p, "emails"),
                        "visible_to": p["visible_to"],
                        "owner": {"id": p["owner_id"]},
                        "organization": organization,
                        "custom_fields": [],
                        "notes": [],
                    }
                })
            })
            .collect();
        let more = matches.len() > offset + limit;
        let page: Vec<Value> = matches.into_iter().skip(offset).take(limit).collect();
        let next = if more {
            json!(encode_cursor((offset + limit) as i64, 0))
        } else {
            Value::Null
        };
        Ok(ok_with(
            json!({"items": page}),
            json!({"next_cursor": next}),
        ))
    }

    /// `GET /api/v2/activities`: by `deal_id`, `lead_id`, `person_id` (the
    /// primary participant), `owner_id`, `org_id`, `done`,
    /// `updated_since`/`updated_until`, in pages by cursor (`sort_by` id,
    /// update_time, add_time or due_date). Deleted activities are left out.
    fn list_activities(&self, request: &Request) -> Result<Answer, Answer> {
        let since = query_time(request, "updated_since")?;
        let until = query_time(request, "updated_until")?;
        let list = V2List::read(request, &["id", "update_time", "add_time", "due_date"])?;
        let (person, deal) = (
            query_id(request, "person_id")?,
            query_id(request, "deal_id")?,
        );
        let (owner, org) = (query_id(request, "owner_id")?, query_id(request, "org_id")?);
        let lead = request.param("lead_id");
        let done = match request.param("done") {
            None => None,
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            Some(_) => return Err(bad("done must be true or false")),
        };
        let rows: Vec<((i64, u64), &Value)> = self
            .activities
            .iter()
            .filter(|(_, a)| a["is_deleted"] != json!(true))
            .filter(|(_, a)| lead.is_none_or(|l| a["lead_id"].as_str() == Some(l)))
            .filter(|(_, a)| person.is_none_or(|p| a["person_id"].as_u64() == Some(p)))
            .filter(|(_, a)| deal.is_none_or(|d| a["deal_id"].as_u64() == Some(d)))
            .filter(|(_, a)| owner.is_none_or(|o| a["owner_id"].as_u64() == Some(o)))
            .filter(|(_, a)| org.is_none_or(|o| a["org_id"].as_u64() == Some(o)))
            .filter(|(_, a)| done.is_none_or(|d| (a["done"] == json!(true)) == d))
            .filter(|(_, a)| since.is_none_or(|s| millis(&a["update_time"]) >= s))
            .filter(|(_, a)| until.is_none_or(|u| millis(&a["update_time"]) < u))
            .map(|(id, a)| (list.key(*id, a), a))
            .collect();
        Ok(list.page(rows))
    }

    fn list_persons(&self, request: &Request) -> Result<Answer, Answer> {
        let since = query_time(request, "updated_since")?;
        let until = query_time(request, "updated_until")?;
        let list = V2List::read(request, &["id", "update_time", "add_time"])?;
        let owner = query_id(request, "owner_id")?;
        let rows: Vec<((i64, u64), &Value)> = self
            .persons
            .iter()
            .filter(|(_, p)| p["is_deleted"] != json!(true))
            .filter(|(_, p)| since.is_none_or(|s| millis(&p["update_time"]) >= s))
            .filter(|(_, p)| until.is_none_or(|u| millis(&p["update_time"]) < u))
            .filter(|(_, p)| owner.is_none_or(|o| p["owner_id"].as_u64() == Some(o)))
            .map(|(id, p)| (list.key(*id, p), p))
            .collect();
        Ok(list.page(rows))
    }

    /// The person fields a create or a change may carry, checked.
    fn person_fields(&self, body: &Map<String, Value>) -> Result<Map<String, Value>, Answer> {
        let mut fields = Map::new();
        if body.contains_key("name") {
            let name = required_str(body, "name")?;
            let (first, last) = split_name(name);
            fields.insert("name".into(), json!(name));
            fields.insert("first_name".into(), json!(first));
            fields.insert("last_name".into(), json!(last));
        }
        for name in ["emails", "phones"] {
            if let Some(items) = contact_items(body, name)? {
                fields.insert(name.into(), items);
            }
        }
        if body.contains_key("owner_id") {
            fields.insert("owner_id".into(), json!(owner_field(self, body)?));
        }
        if body.contains_key("org_id") {
            fields.insert("org_id".into(), json!(int_field(body, "org_id")?));
        }
        if let Some(visible) = int_field(body, "visible_to")? {
            if !matches!(visible, 1 | 3 | 5 | 7) {
                return Err(bad("visible_to must be 1, 3, 5 or 7"));
            }
            fields.insert("visible_to".into(), json!(visible));
        }
        if let Some(labels) = array_field(body, "label_ids")? {
            if !labels.iter().all(Value::is_u64) {
                return Err(bad("label_ids must be integers"));
            }
            fields.insert("label_ids".into(), Value::Array(labels.clone()));
        }
        match body.get("custom_fields") {
            None | Some(Value::Null) => {}
            Some(Value::Object(custom)) => {
                fields.insert("custom_fields".into(), Value::Object(custom.clone()));
            }
            Some(_) => return Err(bad("custom_fields must be an object")),
        }
        if let Some(status) = str_field(body, "marketing_status")? {
            fields.insert("marketing_status".into(), json!(status));
        }
        Ok(fields)
    }

    /// Refuses a person body carrying a refused e-mail.
    fn check_refused(&self, fields: &Map<String, Value>) -> Result<(), Answer> {
        let emails = fields.get("emails").and_then(Value::as_array);
        let refused = emails.into_iter().flatten().any(|e| {
            e["value"]
                .as_str()
                .is_some_and(|v| self.refused_emails.contains(&v.to_ascii_lowercase()))
        });
        if refused {
            return Err(bad("emails: this address is blocked in this company"));
        }
        Ok(())
    }

    fn add_person(&mut self, body: &Map<String, Value>) -> Result<Answer, Answer> {
        required_str(body, "name")?;
        let fields = self.person_fields(body)?;
        self.check_refused(&fields)?;
        let id = next_id(&self.persons);
        let stamp = v2_time(self.now());
        let mut person = json!({
            "id": id,
            "name": null,
            "first_name": null,
            "last_name": null,
            "owner_id": self.me(),
            "org_id": null,
            "add_time": stamp,
            "update_time": stamp,
            "emails": [],
            "phones": [],
            "is_deleted": false,
            "visible_to": 3,
            "label_ids": [],
            "picture_id": null,
            "custom_fields": {},
        });
        merge(&mut person, &Value::Object(fields));
        self.persons.insert(id, person.clone());
        self.count_write(format!("person/{id}"));
        Ok(ok(person))
    }

    fn patch_person(&mut self, id: u64, body: &Map<String, Value>) -> Result<Answer, Answer> {
        if !self.person_exists(id) {
            return Err(not_found("Person not found"));
        }
        let fields = self.person_fields(body)?;
        self.check_refused(&fields)?;
        let stamp = v2_time(self.now());
        let person = self.persons.get_mut(&id).expect("checked above");
        merge(person, &Value::Object(fields));
        person["update_time"] = json!(stamp);
        let person = person.clone();
        self.count_write(format!("person/{id}"));
        Ok(ok(person))
    }
}

// ---------------------------------------------------------------------------
// Leads (v1)

impl Company {
    /// The lead fields a create or a change may carry, checked.
    fn lead_fields(&self, body: &Map<String, Value>) -> Result<Map<String, Value>, Answer> {
        let mut fields = Map::new();
        if body.contains_key("title") {
            fields.insert("title".into(), json!(required_str(body, "title")?));
        }
        if body.contains_key("person_id") {
            fields.insert("person_id".into(), json!(person_ref(self, body)?));
        }
        if body.contains_key("organization_id") {
            let org = int_field(body, "organization_id")?;
            fields.insert("organization_id".into(), json!(org));
        }
        if body.contains_key("owner_id") {
            fields.insert("owner_id".into(), json!(owner_field(self, body)?));
        }
        if let Some(labels) = array_field(body, "label_ids")? {
            if !labels.iter().all(Value::is_string) {
                return Err(bad("label_ids must be UUID strings"));
            }
            fields.insert("label_ids".into(), Value::Array(labels.clone()));
        }
        match body.get("value") {
            None => {}
            Some(Value::Null) => {
                fields.insert("value".into(), Value::Null);
            }
            Some(value) => {
                let amount = value.get("amount").filter(|a| a.is_number());
                let currency = value.get("currency").and_then(Value::as_str);
                let (Some(amount), Some(currency)) = (amount, currency) else {
                    return Err(bad("value needs a numeric amount and a currency"));
                };
                fields.insert(
                    "value".into(),
                    json!({"amount": amount, "currency": currency}),
                );
            }
        }
        if body.contains_key("expected_close_date") {
            date_field(body, "expected_close_date")?;
            fields.insert(
                "expected_close_date".into(),
                body["expected_close_date"].clone(),
            );
        }
        match body.get("visible_to") {
            None => {}
            Some(Value::String(v)) if matches!(v.as_str(), "1" | "3" | "5" | "7") => {
                fields.insert("visible_to".into(), json!(v));
            }
            Some(_) => {
                return Err(bad(
                    "visible_to must be a string: \"1\", \"3\", \"5\" or \"7\"",
                ));
            }
        }
        for flag in ["was_seen", "is_archived"] {
            if let Some(v) = bool_field(body, flag)? {
                fields.insert(flag.into(), json!(v));
            }
        }
        for name in ["origin_id", "channel_id"] {
            if body.contains_key(name) {
                fields.insert(name.into(), json!(str_field(body, name)?));
            }
        }
        if body.contains_key("channel") {
            fields.insert("channel".into(), json!(int_field(body, "channel")?));
        }
        // Leads carry the deal custom fields as top-level 40-hex keys.
        for (name, value) in body {
            if name.len() == 40 && name.chars().all(|c| c.is_ascii_hexdigit()) {
                fields.insert(name.clone(), value.clone());
            }
        }
        Ok(fields)
    }

    fn add_lead(&mut self, body: &Map<String, Value>) -> Result<Answer, Answer> {
        required_str(body, "title")?;
        let person = int_field(body, "person_id")?;
        let org = int_field(body, "organization_id")?;
        if person.is_none() && org.is_none() {
            return Err(bad("person_id or organization_id is required"));
        }
        let fields = self.lead_fields(body)?;
        let id = loop {
            self.lead_serial += 1;
            let id = format!("00000000-0000-4000-8000-{:012}", self.lead_serial);
            if !self.leads.contains_key(&id) {
                break id;
            }
        };
        let stamp = v1_lead_time(self.now());
        let me = self.me();
        let mut lead = json!({
            "id": id,
            "title": null,
            "owner_id": me,
            "creator_id": me,
            "label_ids": [],
            "person_id": null,
            "organization_id": null,
            "source_name": "API",
            "origin": "API",
            "origin_id": null,
            "channel": null,
            "channel_id": null,
            "is_archived": false,
            "was_seen": false,
            "value": null,
            "expected_close_date": null,
            "next_activity_id": null,
            "add_time": stamp,
            "update_time": stamp,
            "visible_to": "3",
            "cc_email": format!("mock+lead{}@pipedrivemail.com", self.lead_serial),
        });
        merge(&mut lead, &Value::Object(fields));
        self.leads.insert(id.clone(), lead.clone());
        self.count_write(format!("lead/{id}"));
        Ok(created(lead))
    }

    fn patch_lead(&mut self, id: &str, body: &Map<String, Value>) -> Result<Answer, Answer> {
        if !self.leads.contains_key(id) {
            return Err(lead_not_found());
        }
        let fields = self.lead_fields(body)?;
        let stamp = v1_lead_time(self.now());
        let lead = self.leads.get_mut(id).expect("checked above");
        merge(lead, &Value::Object(fields));
        if lead["person_id"].is_null() && lead["organization_id"].is_null() {
            return Err(bad("a lead needs a person_id or an organization_id"));
        }
        lead["update_time"] = json!(stamp);
        let lead = lead.clone();
        self.count_write(format!("lead/{id}"));
        Ok(ok(lead))
    }

    /// `GET /api/v1/leads` (not archived) or `GET /api/v1/leads/archived`
    /// (`archived`): by `owner_id`, `person_id`, `organization_id`,
    /// `updated_since` (the archived list's document lacks it; it is
    /// honoured all the same), sorted by `sort`, in pages by `start`.
    fn list_leads(&self, request: &Request, archived: bool) -> Result<Answer, Answer> {
        let start = v1_start(request)?;
        let limit = page_size(request)?;
        let since = query_time(request, "updated_since")?;
        let (owner, person, org) = (
            query_id(request, "owner_id")?,
            query_id(request, "person_id")?,
            query_id(request, "organization_id")?,
        );
        let (field, descending) = v1_sort(request);
        let mut rows: Vec<&Value> = self
            .leads
            .values()
            .filter(|l| (l["is_archived"] == json!(true)) == archived)
            .filter(|l| since.is_none_or(|s| millis(&l["update_time"]) >= s))
            .filter(|l| owner.is_none_or(|o| l["owner_id"].as_u64() == Some(o)))
            .filter(|l| person.is_none_or(|p| l["person_id"].as_u64() == Some(p)))
            .filter(|l| org.is_none_or(|o| l["organization_id"].as_u64() == Some(o)))
            .collect();
        rows.sort_by(|a, b| {
            let id = |l: &Value| l["id"].as_str().unwrap_or_default().to_owned();
            let order = match field {
                "update_time" | "add_time" => millis(&a[field]).cmp(&millis(&b[field])),
                "title" => a["title"].as_str().cmp(&b["title"].as_str()),
                _ => std::cmp::Ordering::Equal,
            };
            order.then_with(|| id(a).cmp(&id(b)))
        });
        if descending {
            rows.reverse();
        }
        Ok(v1_page(rows, start, limit))
    }

    /// `POST /api/v2/leads/{id}/convert/deal`: a conversion job, done at
    /// the status poll that [`Company::convert_polls`] allows. The body may
    /// name a `stage_id` (which wins) or a `pipeline_id`; nothing else
    /// (the document closes it with `additionalProperties: false`). An
    /// archived lead converts like any other: the documents do not refuse
    /// it.
    fn convert_lead(&mut self, id: &str, body: &Map<String, Value>) -> Result<Answer, Answer> {
        if !self.leads.contains_key(id) {
            return Err(entity_not_found());
        }
        if let Some(unknown) = body
            .keys()
            .find(|k| !matches!(k.as_str(), "stage_id" | "pipeline_id"))
        {
            return Err(bad(&format!(
                "unknown field {unknown}: send stage_id or pipeline_id"
            )));
        }
        let stage = int_field(body, "stage_id")?;
        let pipeline = int_field(body, "pipeline_id")?;
        let (stage_id, pipeline_id) = match (stage, pipeline) {
            // The stage implies its pipeline; the mock has one, 1.
            (Some(stage), _) => (stage, 1),
            (None, Some(pipeline)) => (1, pipeline),
            (None, None) => (1, 1),
        };
        let conversion_id = uuid::Uuid::new_v4().to_string();
        self.conversions.insert(
            conversion_id.clone(),
            Conversion {
                lead_id: id.to_owned(),
                stage_id,
                pipeline_id,
                polls: 0,
                status: "not_started",
                deal_id: None,
            },
        );
        self.count_write(format!("convert/{id}"));
        Ok(ok(json!({"conversion_id": conversion_id})))
    }

    /// `GET /api/v2/leads/{id}/convert/status/{conversion_id}`: `running`
    /// for the first [`Company::convert_polls`] polls, then the conversion
    /// is done (`completed` with its `deal_id`, or `failed` when the lead
    /// was gone by then) and stays so.
    fn conversion_status(&mut self, lead_id: &str, id: &str) -> Result<Answer, Answer> {
        let allowed = self.convert_polls;
        let conversion = self
            .conversions
            .get_mut(id)
            .filter(|c| c.lead_id == lead_id)
            .ok_or_else(entity_not_found)?;
        if conversion.status == "not_started" || conversion.status == "running" {
            conversion.polls += 1;
            if conversion.polls > allowed {
                let (stage_id, pipeline_id) = (conversion.stage_id, conversion.pipeline_id);
                let deal = self.complete_conversion(lead_id, stage_id, pipeline_id);
                let conversion = self.conversions.get_mut(id).expect("found above");
                conversion.deal_id = deal;
                conversion.status = if deal.is_some() {
                    "completed"
                } else {
                    "failed"
                };
            } else {
                conversion.status = "running";
            }
        }
        let conversion = &self.conversions[id];
        let mut data = json!({
            "lead_id": conversion.lead_id,
            "conversion_id": id,
            "status": conversion.status,
        });
        // The document: "Deal ID is only present if the conversion was
        // successfully finished."
        if let Some(deal) = conversion.deal_id {
            data["deal_id"] = json!(deal);
        }
        Ok(ok(data))
    }

    /// The conversion's work: a deal from the lead, its activities and
    /// notes moved to the deal, the lead deleted. `None` when the lead is
    /// gone (converted or deleted meanwhile).
    fn complete_conversion(
        &mut self,
        lead_id: &str,
        stage_id: u64,
        pipeline_id: u64,
    ) -> Option<u64> {
        let lead = self.leads.remove(lead_id)?;
        let at = self.now();
        let id = next_id(&self.deals);
        let mut deal = deal_template(id, &v2_time(at), self.me());
        let (amount, currency) = match &lead["value"] {
            Value::Object(value) => (
                value.get("amount").cloned().unwrap_or(json!(0)),
                value.get("currency").cloned().unwrap_or(json!("EUR")),
            ),
            _ => (json!(0), json!("EUR")),
        };
        // Leads carry the deal custom fields as top-level 40-hex keys.
        let custom: Map<String, Value> = lead
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.len() == 40 && k.chars().all(|c| c.is_ascii_hexdigit()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        merge(
            &mut deal,
            &json!({
                "title": lead["title"],
                "person_id": lead["person_id"],
                "org_id": lead["organization_id"],
                "owner_id": lead["owner_id"],
                "value": amount,
                "currency": currency,
                "stage_id": stage_id,
                "pipeline_id": pipeline_id,
                "expected_close_date": lead["expected_close_date"],
                "origin_id": lead["origin_id"],
                "custom_fields": custom,
            }),
        );
        self.deals.insert(id, deal);
        self.count_write(format!("deal/{id}"));
        let moved = json!({"deal_id": id, "lead_id": null});
        for activity in self.activities.values_mut() {
            if activity["lead_id"].as_str() == Some(lead_id) {
                merge(activity, &moved);
                activity["update_time"] = json!(v2_time(at));
            }
        }
        for note in self.notes.values_mut() {
            if note["lead_id"].as_str() == Some(lead_id) {
                merge(note, &moved);
                note["update_time"] = json!(v1_time(at));
            }
        }
        Some(id)
    }
}

// ---------------------------------------------------------------------------
// Deals and activities (v2), notes (v1)

impl Company {
    fn deal_fields(&self, body: &Map<String, Value>) -> Result<Map<String, Value>, Answer> {
        let mut fields = Map::new();
        if body.contains_key("title") {
            fields.insert("title".into(), json!(required_str(body, "title")?));
        }
        if body.contains_key("person_id") {
            fields.insert("person_id".into(), json!(person_ref(self, body)?));
        }
        if body.contains_key("owner_id") {
            fields.insert("owner_id".into(), json!(owner_field(self, body)?));
        }
        for name in ["org_id", "pipeline_id", "stage_id", "visible_to"] {
            if body.contains_key(name) {
                fields.insert(name.into(), json!(int_field(body, name)?));
            }
        }
        match body.get("value") {
            None => {}
            Some(v) if v.is_number() || v.is_null() => {
                fields.insert("value".into(), v.clone());
            }
            Some(_) => return Err(bad("value must be a number")),
        }
        for name in ["currency", "lost_reason", "origin_id"] {
            if body.contains_key(name) {
                fields.insert(name.into(), json!(str_field(body, name)?));
            }
        }
        if let Some(status) = str_field(body, "status")? {
            if !matches!(status, "open" | "won" | "lost") {
                return Err(bad("status must be open, won or lost"));
            }
            fields.insert("status".into(), json!(status));
        }
        if body.contains_key("expected_close_date") {
            date_field(body, "expected_close_date")?;
            fields.insert(
                "expected_close_date".into(),
                body["expected_close_date"].clone(),
            );
        }
        if let Some(labels) = array_field(body, "label_ids")? {
            fields.insert("label_ids".into(), Value::Array(labels.clone()));
        }
        if let Some(custom) = body.get("custom_fields").filter(|c| c.is_object()) {
            fields.insert("custom_fields".into(), custom.clone());
        }
        Ok(fields)
    }

    fn add_deal(&mut self, body: &Map<String, Value>) -> Result<Answer, Answer> {
        required_str(body, "title")?;
        let fields = self.deal_fields(body)?;
        let id = next_id(&self.deals);
        let stamp = v2_time(self.now());
        let mut deal = deal_template(id, &stamp, self.me());
        merge(&mut deal, &Value::Object(fields));
        self.deals.insert(id, deal.clone());
        self.count_write(format!("deal/{id}"));
        Ok(ok(deal))
    }

    /// `GET /api/v2/deals`: by `status` (one or a comma-separated list of
    /// open, won, lost, deleted; without it every deal not deleted),
    /// `person_id`, `org_id`, `owner_id`, `stage_id`, `pipeline_id`,
    /// `updated_since`/`updated_until`, in pages by cursor. Archived deals
    /// are left out; deleted ones (`is_deleted`, or status `deleted`) only
    /// come with `status=deleted`.
    fn list_deals(&self, request: &Request) -> Result<Answer, Answer> {
        let since = query_time(request, "updated_since")?;
        let until = query_time(request, "updated_until")?;
        let list = V2List::read(request, &["id", "update_time", "add_time"])?;
        let statuses: Vec<&str> = match request.param("status") {
            None => vec!["open", "won", "lost"],
            Some(list) => list.split(',').map(str::trim).collect(),
        };
        if let Some(wrong) = statuses
            .iter()
            .find(|s| !matches!(**s, "open" | "won" | "lost" | "deleted"))
        {
            return Err(bad(&format!(
                "status must be open, won, lost or deleted, got {wrong:?}"
            )));
        }
        let filters = [
            ("person_id", query_id(request, "person_id")?),
            ("org_id", query_id(request, "org_id")?),
            ("owner_id", query_id(request, "owner_id")?),
            ("stage_id", query_id(request, "stage_id")?),
            ("pipeline_id", query_id(request, "pipeline_id")?),
        ];
        let listed = |d: &Value| {
            let deleted = d["is_deleted"] == json!(true) || d["status"] == json!("deleted");
            if deleted {
                statuses.contains(&"deleted")
            } else {
                d["status"].as_str().is_some_and(|s| statuses.contains(&s))
            }
        };
        let rows: Vec<((i64, u64), &Value)> = self
            .deals
            .iter()
            .filter(|(_, d)| d["is_archived"] != json!(true))
            .filter(|(_, d)| listed(d))
            .filter(|(_, d)| {
                filters
                    .iter()
                    .all(|(name, want)| want.is_none_or(|w| d[*name].as_u64() == Some(w)))
            })
            .filter(|(_, d)| since.is_none_or(|s| millis(&d["update_time"]) >= s))
            .filter(|(_, d)| until.is_none_or(|u| millis(&d["update_time"]) < u))
            .map(|(id, d)| (list.key(*id, d), d))
            .collect();
        Ok(list.page(rows))
    }

    fn patch_deal(&mut self, id: u64, body: &Map<String, Value>) -> Result<Answer, Answer> {
        if !self.deals.contains_key(&id) {
            return Err(not_found("Deal not found"));
        }
        let fields = self.deal_fields(body)?;
        let at = self.now();
        let deal = self.deals.get_mut(&id).expect("checked above");
        let status_before = deal["status"].clone();
        merge(deal, &Value::Object(fields));
        close_times(deal, &status_before, at);
        deal["update_time"] = json!(v2_time(at));
        let deal = deal.clone();
        self.count_write(format!("deal/{id}"));
        Ok(ok(deal))
    }

    fn activity_fields(&self, body: &Map<String, Value>) -> Result<Map<String, Value>, Answer> {
        let mut fields = Map::new();
        if body.contains_key("subject") {
            fields.insert("subject".into(), json!(required_str(body, "subject")?));
        }
        for name in ["type", "note", "location", "public_description", "duration"] {
            if body.contains_key(name) {
                fields.insert(name.into(), json!(str_field(body, name)?));
            }
        }
        if body.contains_key("owner_id") {
            fields.insert("owner_id".into(), json!(owner_field(self, body)?));
        }
        if let Some(deal) = int_field(body, "deal_id")? {
            if !self.deals.contains_key(&deal) {
                return Err(bad(&format!("deal_id {deal}: deal not found")));
            }
            fields.insert("deal_id".into(), json!(deal));
        }
        if let Some(lead) = str_field(body, "lead_id")? {
            if !self.leads.contains_key(lead) {
                return Err(bad(&format!("lead_id {lead}: lead not found")));
            }
            fields.insert("lead_id".into(), json!(lead));
        }
        for name in ["org_id", "project_id", "priority"] {
            if body.contains_key(name) {
                fields.insert(name.into(), json!(int_field(body, name)?));
            }
        }
        if body.contains_key("due_date") {
            date_field(body, "due_date")?;
            fields.insert("due_date".into(), body["due_date"].clone());
        }
        if body.contains_key("due_time") {
            fields.insert("due_time".into(), json!(time_field(body, "due_time")?));
        }
        for flag in ["busy", "done"] {
            if let Some(v) = bool_field(body, flag)? {
                fields.insert(flag.into(), json!(v));
            }
        }
        // The person: `participants[].primary` (the v2 way), or the
        // `person_id` the spec still lists; both are accepted.
        let person = person_ref(self, body)?;
        if let Some(participants) = array_field(body, "participants")? {
            let mut checked = Vec::with_capacity(participants.len());
            for p in participants {
                let p = p
                    .as_object()
                    .ok_or_else(|| bad("participants items must be objects"))?;
                let Some(id) = person_ref(self, p)? else {
                    return Err(bad("participants items need a person_id"));
                };
                let primary = bool_field(p, "primary")?.unwrap_or(false);
                checked.push(json!({"person_id": id, "primary": primary}));
            }
            let primary = checked
                .iter()
                .find(|p| p["primary"] == json!(true))
                .or(checked.first())
                .map(|p| p["person_id"].clone());
            fields.insert(
                "person_id".into(),
                person.map_or(primary.unwrap_or(Value::Null), |id| json!(id)),
            );
            fields.insert("participants".into(), Value::Array(checked));
        } else if let Some(id) = person {
            fields.insert("person_id".into(), json!(id));
            fields.insert(
                "participants".into(),
                json!([{"person_id": id, "primary": true}]),
            );
        }
        Ok(fields)
    }

    fn add_activity(&mut self, body: &Map<String, Value>) -> Result<Answer, Answer> {
        required_str(body, "subject")?;
        let fields = self.activity_fields(body)?;
        let id = next_id(&self.activities);
        let at = self.now();
        let me = self.me();
        let mut activity = json!({
            "id": id,
            "subject": null,
            "type": "task",
            "owner_id": me,
            "creator_user_id": me,
            "is_deleted": false,
            "add_time": v2_time(at),
            "update_time": v2_time(at),
            "deal_id": null,
            "lead_id": null,
            "person_id": null,
            "org_id": null,
            "project_id": null,
            "due_date": null,
            "due_time": null,
            "duration": null,
            "busy": false,
            "done": false,
            "marked_as_done_time": null,
            "location": null,
            "participants": [],
            "attendees": [],
            "public_description": null,
            "priority": null,
            "note": null,
        });
        merge(&mut activity, &Value::Object(fields));
        if activity["done"] == json!(true) {
            activity["marked_as_done_time"] = json!(v2_time(at));
        }
        self.activities.insert(id, activity.clone());
        self.count_write(format!("activity/{id}"));
        Ok(ok(activity))
    }

    fn patch_activity(&mut self, id: u64, body: &Map<String, Value>) -> Result<Answer, Answer> {
        if !self.activities.contains_key(&id) {
            return Err(not_found("Activity not found"));
        }
        let fields = self.activity_fields(body)?;
        let at = self.now();
        let activity = self.activities.get_mut(&id).expect("checked above");
        let was_done = activity["done"] == json!(true);
        merge(activity, &Value::Object(fields));
        match (was_done, activity["done"] == json!(true)) {
            (false, true) => activity["marked_as_done_time"] = json!(v2_time(at)),
            (true, false) => activity["marked_as_done_time"] = Value::Null,
            _ => {}
        }
        activity["update_time"] = json!(v2_time(at));
        let activity = activity.clone();
        self.count_write(format!("activity/{id}"));
        Ok(ok(activity))
    }

    /// The note fields a create or a change may carry, checked: the
    /// records it is attached to must exist (organizations, projects and
    /// tasks are not kept, so any id is taken).
    fn note_fields(&self, body: &Map<String, Value>) -> Result<Map<String, Value>, Answer> {
        let mut fields = Map::new();
        if body.contains_key("content") {
            fields.insert("content".into(), json!(required_str(body, "content")?));
        }
        if body.contains_key("lead_id") {
            let lead = str_field(body, "lead_id")?;
            if let Some(lead) = lead
                && !self.leads.contains_key(lead)
            {
                return Err(bad(&format!("lead_id {lead}: lead not found")));
            }
            fields.insert("lead_id".into(), json!(lead));
        }
        if body.contains_key("deal_id") {
            let deal = int_field(body, "deal_id")?;
            if let Some(deal) = deal
                && !self.deals.contains_key(&deal)
            {
                return Err(bad(&format!("deal_id {deal}: deal not found")));
            }
            fields.insert("deal_id".into(), json!(deal));
        }
        if body.contains_key("person_id") {
            fields.insert("person_id".into(), json!(person_ref(self, body)?));
        }
        for name in ["org_id", "project_id", "task_id"] {
            if body.contains_key(name) {
                fields.insert(name.into(), json!(int_field(body, name)?));
            }
        }
        if body.contains_key("user_id") {
            let user = Map::from_iter([("owner_id".to_owned(), body["user_id"].clone())]);
            let user = owner_field(self, &user)
                .map_err(|_| bad("user_id must be the id of a user of the company"))?;
            fields.insert("user_id".into(), json!(user.unwrap_or_else(|| self.me())));
        }
        if let Some(at) = str_field(body, "add_time")? {
            chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S")
                .map_err(|_| bad("add_time must be YYYY-MM-DD HH:MM:SS"))?;
            fields.insert("add_time".into(), json!(at));
        }
        for target in ["lead", "deal", "person", "organization", "project", "task"] {
            let name = format!("pinned_to_{target}_flag");
            match body.get(&name) {
                None | Some(Value::Null) => {}
                Some(v) if v == &json!(0) || v == &json!(1) => {
                    fields.insert(name, json!(v == &json!(1)));
                }
                Some(_) => return Err(bad(&format!("{name} must be 0 or 1"))),
            }
        }
        Ok(fields)
    }

    /// `POST /api/v1/notes`: `content` and one of `lead_id`, `deal_id`,
    /// `person_id`, `org_id`, `project_id`, `task_id` are required.
    fn add_note(&mut self, body: &Map<String, Value>) -> Result<Answer, Answer> {
        required_str(body, "content")?;
        if NOTE_TARGETS
            .iter()
            .all(|name| body.get(*name).is_none_or(Value::is_null))
        {
            return Err(bad(
                "one of lead_id, deal_id, person_id, org_id, project_id or task_id is required",
            ));
        }
        let fields = self.note_fields(body)?;
        let id = next_id(&self.notes);
        let stamp = v1_time(self.now());
        let mut note = json!({
            "id": id,
            "content": null,
            "lead_id": null,
            "person_id": null,
            "deal_id": null,
            "org_id": null,
            "project_id": null,
            "task_id": null,
            "user_id": self.me(),
            "add_time": stamp,
            "update_time": stamp,
            "active_flag": true,
            "pinned_to_lead_flag": false,
            "pinned_to_deal_flag": false,
            "pinned_to_person_flag": false,
            "pinned_to_organization_flag": false,
            "pinned_to_project_flag": false,
            "pinned_to_task_flag": false,
            "last_update_user_id": null,
        });
        merge(&mut note, &Value::Object(fields));
        self.notes.insert(id, note.clone());
        self.count_write(format!("note/{id}"));
        // The v1 document answers `addNote` with 200 (not 201 like leads).
        Ok(ok(note))
    }

    /// `PUT /api/v1/notes/{id}`: the fields sent replace the note's; it
    /// must stay attached to something.
    fn update_note(&mut self, id: u64, body: &Map<String, Value>) -> Result<Answer, Answer> {
        if !self
            .notes
            .get(&id)
            .is_some_and(|n| n["active_flag"] != json!(false))
        {
            return Err(not_found("Note not found"));
        }
        let fields = self.note_fields(body)?;
        let stamp = v1_time(self.now());
        let me = self.me();
        let mut note = self.notes[&id].clone();
        merge(&mut note, &Value::Object(fields));
        if NOTE_TARGETS.iter().all(|name| note[*name].is_null()) {
            return Err(bad(
                "a note needs a lead, deal, person, organization, project or task",
            ));
        }
        note["update_time"] = json!(stamp);
        note["last_update_user_id"] = json!(me);
        self.notes.insert(id, note.clone());
        self.count_write(format!("note/{id}"));
        Ok(ok(note))
    }

    /// `GET /api/v1/notes`: active notes by `lead_id`, `deal_id`,
    /// `person_id`, `org_id`, `project_id`, `task_id`, `user_id`,
    /// `updated_since`, sorted by `sort`, in pages by `start`.
    fn list_notes(&self, request: &Request) -> Result<Answer, Answer> {
        let start = v1_start(request)?;
        let limit = page_size(request)?;
        let since = query_time(request, "updated_since")?;
        let lead = request.param("lead_id");
        let filters = [
            ("deal_id", query_id(request, "deal_id")?),
            ("person_id", query_id(request, "person_id")?),
            ("org_id", query_id(request, "org_id")?),
            ("project_id", query_id(request, "project_id")?),
            ("task_id", query_id(request, "task_id")?),
            ("user_id", query_id(request, "user_id")?),
        ];
        let (field, descending) = v1_sort(request);
        let mut rows: Vec<&Value> = self
            .notes
            .values()
            .filter(|n| n["active_flag"] != json!(false))
            .filter(|n| lead.is_none_or(|l| n["lead_id"].as_str() == Some(l)))
            .filter(|n| {
                filters
                    .iter()
                    .all(|(name, want)| want.is_none_or(|w| n[*name].as_u64() == Some(w)))
            })
            .filter(|n| since.is_none_or(|s| v1_millis(&n["update_time"]) >= s))
            .collect();
        rows.sort_by(|a, b| {
            let order = match field {
                "add_time" | "update_time" => v1_millis(&a[field]).cmp(&v1_millis(&b[field])),
                "content" => a["content"].as_str().cmp(&b["content"].as_str()),
                "user_id" | "deal_id" | "person_id" | "org_id" => {
                    a[field].as_u64().cmp(&b[field].as_u64())
                }
                _ => std::cmp::Ordering::Equal,
            };
            order.then_with(|| a["id"].as_u64().cmp(&b["id"].as_u64()))
        });
        if descending {
            rows.reverse();
        }
        Ok(v1_page(rows, start, limit))
    }
}

/// What a note can be attached to (one is required).
const NOTE_TARGETS: [&str; 6] = [
    "lead_id",
    "deal_id",
    "person_id",
    "org_id",
    "project_id",
    "task_id",
];

// ---------------------------------------------------------------------------
// Webhooks (v1) and the payloads Pipedrive delivers

/// The most webhooks a user can have (Pipedrive's guide for webhooks:
/// "The maximum limit of webhooks is 40 different webhooks per user").
const MAX_WEBHOOKS: usize = 40;

/// `event_object` values of `addWebhook` in `openapi-v1.yaml`.
const WEBHOOK_OBJECTS: [&str; 11] = [
    "activity",
    "deal",
    "lead",
    "note",
    "organization",
    "person",
    "pipeline",
    "product",
    "stage",
    "user",
    "*",
];

/// The further objects v2 webhooks allow (CONTRACTS §2.10).
const WEBHOOK_V2_OBJECTS: [&str; 6] = [
    "deal_product",
    "deal_installment",
    "project",
    "task",
    "board",
    "phase",
];

/// Where payloads say the company lives (`users/me`'s `company_domain`).
const HOST: &str = "mock.pipedrive.com";

/// Whether `url` is a full http(s) URL with a host, and not Pipedrive's
/// API (which the document forbids as a `subscription_url`).
fn subscription_url_ok(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some_and(|h| {
                !h.is_empty() && h != "pipedrive.com" && !h.ends_with(".pipedrive.com")
            })
    })
}

impl Company {
    /// `POST /api/v1/webhooks`: **201** with the webhook; a refusal names
    /// the field in `errors`, like Pipedrive's.
    fn add_webhook(&mut self, body: &Map<String, Value>) -> Result<Answer, Answer> {
        let refuse =
            |field: &str, message: &str| webhook_error(StatusCode::BAD_REQUEST, field, message);
        let url = body.get("subscription_url").and_then(Value::as_str);
        if !url.is_some_and(subscription_url_ok) {
            return Err(refuse("subscription_url", "invalid or non-reachable URL"));
        }
        let version = match body.get("version") {
            None | Some(Value::Null) => "2.0",
            Some(Value::String(v)) if matches!(v.as_str(), "1.0" | "2.0") => v.as_str(),
            Some(_) => return Err(refuse("version", "must be \"1.0\" or \"2.0\"")),
        };
        let action = body.get("event_action").and_then(Value::as_str);
        if !action.is_some_and(|a| matches!(a, "create" | "change" | "delete" | "*")) {
            return Err(refuse(
                "event_action",
                "must be one of create, change, delete, *",
            ));
        }
        let object = body.get("event_object").and_then(Value::as_str);
        let known = |o: &str| {
            WEBHOOK_OBJECTS.contains(&o) || (version == "2.0" && WEBHOOK_V2_OBJECTS.contains(&o))
        };
        if !object.is_some_and(known) {
            return Err(refuse("event_object", "unknown event object"));
        }
        let name = match body.get("name") {
            Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= 255 => n,
            _ => {
                return Err(refuse(
                    "name",
                    "is required (a string of at most 255 characters)",
                ));
            }
        };
        let mut auth = [Value::Null, Value::Null];
        for (slot, field) in auth
            .iter_mut()
            .zip(["http_auth_user", "http_auth_password"])
        {
            match body.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::String(v)) => *slot = json!(v),
                Some(_) => return Err(refuse(field, "must be a string")),
            }
        }
        let me = self.me();
        let user = match body.get("user_id") {
            None | Some(Value::Null) => me,
            Some(v) => match v.as_u64() {
                Some(id) if self.user_exists(id) => id,
                _ => return Err(refuse("user_id", "user not found")),
            },
        };
        let held = self
            .webhooks
            .values()
            .filter(|w| w["user_id"].as_u64() == Some(user))
            .count();
        if held >= MAX_WEBHOOKS {
            return Err(refuse(
                "user_id",
                "a user can have at most 40 webhooks; delete one first",
            ));
        }
        let id = next_id(&self.webhooks);
        let webhook = json!({
            "id": id,
            "company_id": 1,
            "owner_id": me,
            "user_id": user,
            "event_action": action,
            "event_object": object,
            "subscription_url": url,
            "version": version,
            "is_active": 1,
            "add_time": v1_lead_time(self.now()),
            "remove_time": null,
            "type": "general",
            "http_auth_user": auth[0],
            "http_auth_password": auth[1],
            "additional_data": {},
            "remove_reason": null,
            "last_delivery_time": null,
            "last_http_status": null,
            "admin_id": me,
            "name": name,
        });
        self.webhooks.insert(id, webhook.clone());
        self.count_write(format!("webhook/{id}"));
        Ok(webhook_ok(StatusCode::CREATED, webhook))
    }

    /// The webhook a delivery would come from: the first of `version`
    /// whose `event_object` is `object` or `*` (id and owner), else
    /// (1, the token's user).
    fn webhook_for(&self, version: &str, object: &str) -> (u64, u64) {
        self.webhooks
            .values()
            .find(|w| {
                w["version"] == json!(version)
                    && (w["event_object"] == json!(object) || w["event_object"] == json!("*"))
            })
            .map_or((1, self.me()), |w| {
                (
                    w["id"].as_u64().unwrap_or(1),
                    w["owner_id"].as_u64().unwrap_or(1),
                )
            })
    }

    /// The stored record `entity`/`id` (person, deal, activity, note by
    /// numeric id; lead by UUID), if any.
    ///
    /// # Panics
    ///
    /// On another entity, or a non-numeric id where one is needed.
    fn record(&self, entity: &str, id: &str) -> Option<Value> {
        let number = || -> u64 {
            id.parse()
                .unwrap_or_else(|_| panic!("{entity} ids are numeric, got {id:?}"))
        };
        match entity {
            "person" => self.persons.get(&number()).cloned(),
            "deal" => self.deals.get(&number()).cloned(),
            "activity" => self.activities.get(&number()).cloned(),
            "note" => self.notes.get(&number()).cloned(),
            "lead" => self.leads.get(id).cloned(),
            other => {
                panic!("no webhook payloads for {other:?}: person, deal, lead, activity or note")
            }
        }
    }

    /// An event's time, record and `previous`: the record's
    /// `update_time` (the clock for a delete), the record (none for a
    /// delete), and `previous` (a delete's defaults to the record's last
    /// state).
    ///
    /// # Panics
    ///
    /// When a create or change names a record that is not stored.
    fn event_state(
        &mut self,
        record: Option<Value>,
        deleting: bool,
        previous: Value,
        builder: &str,
        entity: &str,
        id: &str,
    ) -> (DateTime<Utc>, Value, Value) {
        let stamp = match record.as_ref().map(|r| &r["update_time"]) {
            Some(t) if !deleting && v1_millis(t) != i64::MIN => {
                DateTime::from_timestamp_millis(v1_millis(t)).expect("a stored time")
            }
            _ => self.now(),
        };
        if deleting {
            let previous = match previous {
                Value::Null => record.unwrap_or(Value::Null),
                given => given,
            };
            (stamp, Value::Null, previous)
        } else {
            let record = record.unwrap_or_else(|| panic!("{builder}: no stored {entity} {id}"));
            (stamp, record, previous)
        }
    }

    /// The payload a **v2** webhook delivers for `action` (`create`,
    /// `change`, `delete`) on the `entity` (`person`, `deal`, `lead`,
    /// `activity`) with this `id` (numeric, or the lead's UUID), as the
    /// company holds it now (CONTRACTS §2.10):
    ///
    /// - `meta` with every id as a string: `action`, `entity`,
    ///   `entity_id`, a fresh UUID `id` and `correlation_id`,
    ///   `company_id` "1", `user_id` (the token's user), `timestamp` (the
    ///   record's `update_time`, else the company's now, RFC 3339 with
    ///   milliseconds), `type` "general", `version` "2.0", `webhook_id` and
    ///   `webhook_owner_id` (the first v2 webhook for the entity, else "1"
    ///   and the token's user), `change_source` "app", `is_bulk_edit`
    ///   false, `attempt` 1, `host`, `permitted_user_ids`;
    /// - `data`: the record as stored (the v2 shape; a lead in its v1
    ///   shape), `null` for `delete`;
    /// - `previous`: as given (for `change`, only the changed fields); for
    ///   `delete` with `previous` null, the record's last state if it is
    ///   still stored.
    ///
    /// A test posts it to the receiver, playing Pipedrive's sender.
    ///
    /// # Panics
    ///
    /// On another action or entity, a non-numeric id for a numeric
    /// entity, or (for `create`/`change`) a record that is not stored: a
    /// mistake in the test.
    pub fn webhook_v2(&mut self, action: &str, entity: &str, id: &str, previous: Value) -> Value {
        assert!(
            matches!(action, "create" | "change" | "delete"),
            "v2 webhook actions are create, change, delete; got {action:?}"
        );
        let record = self.record(entity, id);
        let (stamp, data, previous) = self.event_state(
            record,
            action == "delete",
            previous,
            "webhook_v2",
            entity,
            id,
        );
        let me = self.me();
        let (webhook, owner) = self.webhook_for("2.0", entity);
        json!({
            "meta": {
                "action": action,
                "entity": entity,
                "entity_id": id,
                "id": uuid::Uuid::new_v4().to_string(),
                "correlation_id": uuid::Uuid::new_v4().to_string(),
                "company_id": "1",
                "user_id": me.to_string(),
                "timestamp": v1_lead_time(stamp),
                "type": "general",
                "version": "2.0",
                "webhook_id": webhook.to_string(),
                "webhook_owner_id": owner.to_string(),
                "change_source": "app",
                "is_bulk_edit": false,
                "attempt": 1,
                "host": HOST,
                "permitted_user_ids": [me.to_string()],
            },
            "data": data,
            "previous": previous,
        })
    }

    /// The payload a **v1** webhook delivers for `action` (`added`,
    /// `updated`, `deleted`, `merged`) on the `object` (`person`, `deal`,
    /// `activity`, `note`; `lead` too, though Pipedrive sends lead events
    /// only in v2) with this `id`, as the company holds it now (CONTRACTS
    /// §2.10):
    ///
    /// - `v` 1, `matches_filters`, `retry` 0, `event` `"{action}.{object}"`;
    /// - `meta` with numeric ids (a lead's stays its UUID): `v`, `action`,
    ///   `object`, `id`, `company_id` 1, `user_id` (the token's user),
    ///   `host`, `timestamp` (seconds) and `timestamp_micro` (the record's
    ///   `update_time`, else the company's now), `change_source` "app",
    ///   `permitted_user_ids`, `trans_pending`, `is_bulk_update`,
    ///   `pipedrive_service_name`, `webhook_id` (the first v1 webhook for
    ///   the object, else 1), `type` "general";
    /// - `current`: the record in the v1 field shape (`user_id` for a deal
    ///   or activity owner, `email`/`phone` for a person's, `active_flag`,
    ///   `YYYY-MM-DD HH:MM:SS` times, `visible_to` a string, custom fields
    ///   at the top level), `null` for `deleted`;
    /// - `previous`: as given; for `deleted` with `previous` null, the
    ///   record's last state (v1 shape) if it is still stored.
    ///
    /// # Panics
    ///
    /// On another action or object, a non-numeric id for a numeric
    /// object, or (except for `deleted`) a record that is not stored.
    pub fn webhook_v1(&mut self, action: &str, object: &str, id: &str, previous: Value) -> Value {
        assert!(
            matches!(action, "added" | "updated" | "deleted" | "merged"),
            "v1 webhook actions are added, updated, deleted, merged; got {action:?}"
        );
        let record = self.record(object, id).map(|r| v1_shape(object, &r));
        let (stamp, current, previous) = self.event_state(
            record,
            action == "deleted",
            previous,
            "webhook_v1",
            object,
            id,
        );
        let me = self.me();
        let (webhook, _) = self.webhook_for("1.0", object);
        let entity_id = id.parse::<u64>().map_or_else(|_| json!(id), |n| json!(n));
        let micros = stamp.timestamp_micros();
        json!({
            "v": 1,
            "matches_filters": {"current": [], "previous": []},
            "meta": {
                "v": 1,
                "action": action,
                "object": object,
                "change_source": "app",
                "id": entity_id,
                "company_id": 1,
                "user_id": me,
                "host": HOST,
                "timestamp": stamp.timestamp(),
                "timestamp_micro": micros,
                "permitted_user_ids": [me],
                "trans_pending": false,
                "is_bulk_update": false,
                "pipedrive_service_name": false,
                "matches_filters": {"current": [], "previous": []},
                "webhook_id": webhook,
                "type": "general",
            },
            "retry": 0,
            "current": current,
            "previous": previous,
            "event": format!("{action}.{object}"),
        })
    }
}

/// A stored record in v1's field shape, for v1 webhook payloads: times as
/// `YYYY-MM-DD HH:MM:SS`, `active_flag` for `is_deleted`, `visible_to` a
/// string, custom fields at the top level; a person's `email`/`phone`, a
/// deal's or activity's `user_id` for `owner_id`.
fn v1_shape(object: &str, record: &Value) -> Value {
    let Some(fields) = record.as_object() else {
        return record.clone();
    };
    // Leads and notes are v1 records already.
    if matches!(object, "lead" | "note") {
        return record.clone();
    }
    let mut out = Map::new();
    for (name, value) in fields {
        match name.as_str() {
            "is_deleted" => {
                out.insert("active_flag".into(), json!(value != &json!(true)));
            }
            "custom_fields" => {
                for (key, custom) in value.as_object().into_iter().flatten() {
                    out.insert(key.clone(), custom.clone());
                }
            }
            "visible_to" => {
                let v = value
                    .as_u64()
                    .map_or(value.clone(), |n| json!(n.to_string()));
                out.insert(name.clone(), v);
            }
            "emails" if object == "person" => {
                out.insert("email".into(), value.clone());
            }
            "phones" if object == "person" => {
                out.insert("phone".into(), value.clone());
            }
            "owner_id" if object != "person" => {
                out.insert("user_id".into(), value.clone());
            }
            n if n.ends_with("_time") && value.is_string() => {
                let v1 = DateTime::parse_from_rfc3339(value.as_str().unwrap_or_default())
                    .map_or(value.clone(), |t| json!(v1_time(t.to_utc())));
                out.insert(name.clone(), v1);
            }
            _ => {
                out.insert(name.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> reqwest::Client {
        reqwest::Client::new()
    }

    async fn send(
        request: reqwest::RequestBuilder,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let response = request.send().await.expect("the mock answers");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
        let headers = response.headers().clone();
        let body = response.json().await.expect("a JSON answer");
        (status, headers, body)
    }

    fn header(headers: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
        headers.get(name)?.to_str().ok()?.parse().ok()
    }

    async fn create_person(mock: &Mock, name: &str, email: &str) -> Value {
        let (status, _, body) = send(
            client()
                .post(format!("{}/api/v2/persons", mock.url))
                .header("x-api-token", API_TOKEN)
                .json(&json!({
                    "name": name,
                    "owner_id": 1,
                    "emails": [{"value": email, "primary": true, "label": "work"}],
                    "phones": [{"value": "+358401234567"}],
                    "visible_to": 3,
                })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].clone()
    }

    /// Every request the mock received, validated against the official
    /// OpenAPI documents.
    fn validate_recorded(mock: &Mock) -> usize {
        let requests: Vec<lead_crm_pipedrive_spec::Recorded> = mock
            .company()
            .requests
            .iter()
            .map(|r| lead_crm_pipedrive_spec::Recorded {
                method: r.method.clone(),
                path: r.path.clone(),
                query: r.query.clone(),
                headers: r.headers.clone(),
                body: r.body.clone(),
            })
            .collect();
        let mut coverage = lead_crm_pipedrive_spec::Coverage::new();
        if let Err(report) = coverage.validate_all(&requests) {
            panic!("requests the official documents refuse:\n{report}");
        }
        coverage.operation_count()
    }

    #[tokio::test]
    async fn a_person_is_created_found_by_email_and_given_a_lead() {
        let mock = Mock::start().await;
        let person = create_person(&mock, "Jane Doe", "jane@acme.example").await;
        assert_eq!(person["first_name"], json!("Jane"));
        assert_eq!(person["last_name"], json!("Doe"));
        assert_eq!(person["add_time"], json!("2026-11-23T12:00:00Z"));
        assert_eq!(person["emails"][0]["value"], json!("jane@acme.example"));
        assert_eq!(person["phones"][0]["primary"], json!(true));
        assert_eq!(person["phones"][0]["label"], json!("work"));
        let id = person["id"].as_u64().expect("an id");

        let (status, _, found) = send(
            client()
                .get(format!("{}/api/v2/persons/search", mock.url))
                .header("x-api-token", API_TOKEN)
                .query(&[
                    ("term", "jane@acme.example"),
                    ("fields", "email"),
                    ("exact_match", "true"),
                    ("limit", "10"),
                ]),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let items = found["data"]["items"].as_array().expect("items");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["item"]["id"], json!(id));
        assert_eq!(items[0]["item"]["type"], json!("person"));
        assert_eq!(items[0]["item"]["emails"], json!(["jane@acme.example"]));
        assert_eq!(items[0]["item"]["owner"]["id"], json!(1));
        assert_eq!(found["additional_data"]["next_cursor"], Value::Null);

        let (status, _, lead) = send(
            client()
                .post(format!("{}/api/v1/leads", mock.url))
                .header("x-api-token", API_TOKEN)
                .json(&json!({
                    "title": "Jane Doe – pricing form",
                    "person_id": id,
                    "owner_id": 1,
                    "value": {"amount": 999, "currency": "EUR"},
                    "expected_close_date": "2026-12-31",
                    "visible_to": "3",
                    "origin_id": "web-form",
                })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{lead}");
        let lead_id = lead["data"]["id"].as_str().expect("a string id");
        assert_eq!(lead_id, "00000000-0000-4000-8000-000000000001");
        assert_eq!(lead["data"]["person_id"], json!(id));
        assert_eq!(lead["data"]["is_archived"], json!(false));

        let (status, _, activity) = send(
            client()
                .post(format!("{}/api/v2/activities", mock.url))
                .header("x-api-token", API_TOKEN)
                .json(&json!({
                    "subject": "Call back web lead",
                    "type": "call",
                    "lead_id": lead_id,
                    "participants": [{"person_id": id, "primary": true}],
                    "due_date": "2026-11-24",
                    "due_time": "09:30",
                    "done": false,
                })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{activity}");
        assert_eq!(activity["data"]["person_id"], json!(id));
        assert_eq!(activity["data"]["due_time"], json!("09:30:00"));

        let (status, _, note) = send(
            client()
                .post(format!("{}/api/v1/notes", mock.url))
                .header("x-api-token", API_TOKEN)
                .json(&json!({"content": "Pricing form", "lead_id": lead_id})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{note}");

        let (status, _, me) = send(
            client()
                .get(format!("{}/api/v1/users/me", mock.url))
                .header("x-api-token", API_TOKEN),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["data"]["email"], json!("admin@company.com"));
        assert_eq!(me["data"]["company_domain"], json!("mock"));

        let company = mock.company();
        assert_eq!(company.writes.get(&format!("person/{id}")), Some(&1));
        assert_eq!(company.writes.get(&format!("lead/{lead_id}")), Some(&1));
        assert_eq!(company.writes.get("activity/1"), Some(&1));
        assert_eq!(
            company.calls,
            [
                "POST /api/v2/persons",
                "GET /api/v2/persons/search",
                "POST /api/v1/leads",
                "POST /api/v2/activities",
                "POST /api/v1/notes",
                "GET /api/v1/users/me",
            ]
        );
        // The recorded JSON body, as sent.
        let posted = &company.requests[0];
        assert_eq!(posted.method, "POST");
        assert_eq!(
            posted.body.as_ref().expect("a body")["name"],
            json!("Jane Doe")
        );
        assert!(
            posted
                .headers
                .iter()
                .any(|(k, v)| k == "x-api-token" && v == API_TOKEN)
        );
        let search = &company.requests[1];
        assert!(
            search
                .query
                .contains(&("term".into(), "jane@acme.example".into()))
        );
        assert_eq!(search.body, None);
        // Tokens: create 5, search 20, lead 10, activity 5, note 10, me 2.
        assert_eq!(company.tokens_used, 52);
        drop(company);

        assert_eq!(validate_recorded(&mock), 6);
    }

    #[tokio::test]
    async fn persons_updated_since_come_in_pages_by_cursor() {
        let mock = Mock::start().await;
        for n in 0..5 {
            create_person(&mock, &format!("Person {n}"), &format!("p{n}@acme.example")).await;
        }
        // Person 1 changed in Pipedrive after the others: it comes last.
        mock.company()
            .change_person(2, json!({"name": "Changed Person"}));
        let list = |cursor: Option<String>| {
            let mut query = vec![
                ("updated_since", "2026-11-23T12:00:01Z".to_owned()),
                ("sort_by", "update_time".to_owned()),
                ("sort_direction", "asc".to_owned()),
                ("limit", "2".to_owned()),
            ];
            if let Some(cursor) = cursor {
                query.push(("cursor", cursor));
            }
            client()
                .get(format!("{}/api/v2/persons", mock.url))
                .header("x-api-token", API_TOKEN)
                .query(&query)
        };
        let (status, _, first) = send(list(None)).await;
        assert_eq!(status, StatusCode::OK);
        let ids = |page: &Value| -> Vec<u64> {
            page["data"]
                .as_array()
                .expect("data")
                .iter()
                .filter_map(|p| p["id"].as_u64())
                .collect()
        };
        assert_eq!(ids(&first), [3, 4]);
        let cursor = first["additional_data"]["next_cursor"]
            .as_str()
            .expect("a cursor")
            .to_owned();
        let (_, _, second) = send(list(Some(cursor))).await;
        assert_eq!(ids(&second), [5, 2]);
        assert_eq!(second["data"][1]["first_name"], json!("Changed"));
        assert_eq!(second["additional_data"]["next_cursor"], Value::Null);

        let (status, _, refused) = send(list(Some("not-a-cursor".into()))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(refused["success"], json!(false));
        assert_eq!(validate_recorded(&mock), 2);
    }

    #[tokio::test]
    async fn leads_list_by_start_and_missing_ones_answer_404() {
        let mock = Mock::start().await;
        let person = create_person(&mock, "Jane Doe", "jane@acme.example").await;
        for n in 0..3 {
            let (status, _, _) = send(
                client()
                    .post(format!("{}/api/v1/leads", mock.url))
                    .header("x-api-token", API_TOKEN)
                    .json(&json!({"title": format!("Lead {n}"), "person_id": person["id"]})),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED);
        }
        mock.company().change_lead(
            "00000000-0000-4000-8000-000000000001",
            json!({"title": "Renamed"}),
        );
        let (status, _, page) = send(
            client()
                .get(format!("{}/api/v1/leads", mock.url))
                .header("x-api-token", API_TOKEN)
                .query(&[("start", "0"), ("limit", "2"), ("sort", "update_time")]),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["data"][0]["title"], json!("Lead 1"));
        let pagination = &page["additional_data"]["pagination"];
        assert_eq!(pagination["more_items_in_collection"], json!(true));
        assert_eq!(pagination["next_start"], json!(2));
        let (_, _, rest) = send(
            client()
                .get(format!("{}/api/v1/leads", mock.url))
                .header("x-api-token", API_TOKEN)
                .query(&[("start", "2"), ("limit", "2"), ("sort", "update_time")]),
        )
        .await;
        assert_eq!(rest["data"][0]["title"], json!("Renamed"));
        assert_eq!(
            rest["additional_data"]["pagination"]["more_items_in_collection"],
            json!(false)
        );

        let (status, _, missing) = send(
            client()
                .get(format!(
                    "{}/api/v1/leads/00000000-0000-4000-8000-000000000099",
                    mock.url
                ))
                .header("x-api-token", API_TOKEN),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(missing["error"], json!("requested lead not found"));

        // A lead without a person or organization, and one whose
        // `visible_to` is a number, are refused.
        for body in [
            json!({"title": "No one"}),
            json!({"title": "Wrong type", "person_id": person["id"], "visible_to": 3}),
            json!({"title": "No such person", "person_id": 999}),
        ] {
            let (status, _, refused) = send(
                client()
                    .post(format!("{}/api/v1/leads", mock.url))
                    .header("x-api-token", API_TOKEN)
                    .json(&body),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {refused}");
        }
        assert_eq!(validate_recorded_lenient(&mock), 4);
    }

    /// Like [`validate_recorded`] but skipping the requests a test sent to
    /// be refused (answered 400): the count of the valid operations.
    fn validate_recorded_lenient(mock: &Mock) -> usize {
        let company = mock.company();
        let mut coverage = lead_crm_pipedrive_spec::Coverage::new();
        for r in &company.requests {
            let record = lead_crm_pipedrive_spec::Recorded {
                method: r.method.clone(),
                path: r.path.clone(),
                query: r.query.clone(),
                headers: r.headers.clone(),
                body: r.body.clone(),
            };
            let _ = coverage.validate(&record);
        }
        coverage.operation_count()
    }

    #[tokio::test]
    async fn without_the_token_the_answer_is_401() {
        let mock = Mock::start().await;
        let (status, headers, body) =
            send(client().get(format!("{}/api/v2/persons/1", mock.url))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], json!("unauthorized access"));
        assert_eq!(body["errorCode"], json!(401));
        assert!(headers.contains_key("x-ratelimit-limit"));
        let (status, _, _) = send(
            client()
                .get(format!("{}/api/v2/persons/1", mock.url))
                .header("x-api-token", "wrong"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // The Bearer form is accepted: the person is just missing.
        let (status, _, body) = send(
            client()
                .get(format!("{}/api/v2/persons/1", mock.url))
                .bearer_auth(API_TOKEN),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], json!("Person not found"));
        let company = mock.company();
        assert_eq!(company.calls, ["GET /api/v2/persons/1"]);
        assert_eq!(company.requests.len(), 3);
    }

    #[tokio::test]
    async fn every_answer_carries_the_rate_limits_and_the_burst_is_enforced() {
        let mock = Mock::start().await;
        let get = || {
            client()
                .get(format!("{}/api/v1/users", mock.url))
                .header("x-api-token", API_TOKEN)
        };
        let (status, first, users) = send(get()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(users["data"][0]["id"], json!(1));
        let (_, second, _) = send(get()).await;
        assert_eq!(header(&first, "x-ratelimit-limit"), Some(20));
        assert_eq!(header(&first, "x-ratelimit-remaining"), Some(19));
        assert_eq!(header(&second, "x-ratelimit-remaining"), Some(18));
        assert!(header(&first, "x-ratelimit-reset").is_some_and(|r| (1..=2).contains(&r)));
        assert_eq!(
            header(&first, "x-daily-ratelimit-token-limit"),
            Some(30_000)
        );
        assert_eq!(
            header(&second, "x-daily-ratelimit-token-remaining"),
            Some(30_000 - 40)
        );

        // A fresh window with a budget of 2: the third call is refused.
        {
            let mut company = mock.company();
            company.budget = 2;
            company.window = None;
        }
        send(get()).await;
        let (status, _, _) = send(get()).await;
        assert_eq!(status, StatusCode::OK);
        let (status, headers, body) = send(get()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error"], json!("Request over limit"));
        assert_eq!(header(&headers, "x-ratelimit-remaining"), Some(0));
        assert!(header(&headers, "retry-after").is_some_and(|r| r >= 1));
        // The refused call spent no tokens.
        assert_eq!(mock.company().tokens_used, 80);

        // The daily budget spent: 429 with no tokens remaining.
        {
            let mut company = mock.company();
            company.budget = 20;
            company.window = None;
            company.tokens_used = company.daily_tokens;
        }
        let (status, headers, _) = send(get()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            header(&headers, "x-daily-ratelimit-token-remaining"),
            Some(0)
        );
    }

    #[tokio::test]
    async fn a_queued_failure_is_answered_first_and_bad_input_gets_the_envelope() {
        let mock = Mock::start().await;
        mock.company().failures.push_back((
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"success": false, "error": "Service unavailable"}),
        ));
        let (status, headers, body) = send(
            client()
                .post(format!("{}/api/v2/persons", mock.url))
                .header("x-api-token", API_TOKEN)
                .json(&json!({"name": "Jane Doe"})),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"], json!("Service unavailable"));
        assert!(headers.contains_key("x-ratelimit-remaining"));
        assert!(mock.company().persons.is_empty());
        // The next call does the work.
        create_person(&mock, "Jane Doe", "jane@acme.example").await;

        let post = |body: &'static str| {
            client()
                .post(format!("{}/api/v2/persons", mock.url))
                .header("x-api-token", API_TOKEN)
                .header("content-type", "application/json")
                .body(body)
        };
        for (body, status) in [
            ("{not json", StatusCode::BAD_REQUEST),
            ("[1, 2]", StatusCode::BAD_REQUEST),
            (r#"{"emails": [{"value": "a@b"}]}"#, StatusCode::BAD_REQUEST),
            (
                r#"{"name": "X", "emails": ["a@b"]}"#,
                StatusCode::BAD_REQUEST,
            ),
            (r#"{"name": "X", "owner_id": 42}"#, StatusCode::BAD_REQUEST),
            (r#"{"name": "X", "owner_id": "1"}"#, StatusCode::BAD_REQUEST),
        ] {
            let (answered, _, envelope) = send(post(body)).await;
            assert_eq!(answered, status, "{body}");
            assert_eq!(envelope["success"], json!(false), "{body}");
        }
        for (method, path, status) in [
            ("GET", "/api/v2/persons/abc", StatusCode::BAD_REQUEST),
            ("GET", "/api/v2/nothing", StatusCode::NOT_FOUND),
            ("PATCH", "/api/v2/persons/99", StatusCode::BAD_REQUEST),
        ] {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let (answered, _, envelope) = send(
                client()
                    .request(method, format!("{}{path}", mock.url))
                    .header("x-api-token", API_TOKEN),
            )
            .await;
            assert_eq!(answered, status, "{path}");
            assert_eq!(envelope["success"], json!(false));
        }
        // A search term too short for a partial match.
        let (status, _, _) = send(
            client()
                .get(format!("{}/api/v2/persons/search", mock.url))
                .header("x-api-token", API_TOKEN)
                .query(&[("term", "j")]),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn a_change_in_pipedrive_and_a_patch_move_update_time() {
        let mock = Mock::start().await;
        let person = create_person(&mock, "Jane Doe", "jane@acme.example").await;
        let id = person["id"].as_u64().expect("id");
        let at = DateTime::parse_from_rfc3339("2027-01-02T03:04:05Z")
            .expect("time")
            .to_utc();
        mock.company().clock = Some(at);
        let (status, _, patched) = send(
            client()
                .patch(format!("{}/api/v2/persons/{id}", mock.url))
                .header("x-api-token", API_TOKEN)
                .json(
                    &json!({"phones": [{"value": "+372 555", "primary": true, "label": "mobile"}]}),
                ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            patched["data"]["update_time"],
            json!("2027-01-02T03:04:05Z")
        );
        assert_eq!(patched["data"]["add_time"], json!("2026-11-23T12:00:00Z"));
        assert_eq!(patched["data"]["phones"][0]["label"], json!("mobile"));
        assert_eq!(mock.company().writes.get(&format!("person/{id}")), Some(&2));

        let (status, _, deal) = send(
            client()
                .post(format!("{}/api/v2/deals", mock.url))
                .header("x-api-token", API_TOKEN)
                .json(
                    &json!({"title": "Acme Oy", "value": 5000, "currency": "EUR", "person_id": id}),
                ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{deal}");
        let (status, _, won) = send(
            client()
                .patch(format!("{}/api/v2/deals/1", mock.url))
                .header("x-api-token", API_TOKEN)
                .json(&json!({"status": "won"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(won["data"]["won_time"], json!("2027-01-02T03:04:05Z"));
        assert_eq!(validate_recorded(&mock), 4);
    }

    #[tokio::test]
    async fn the_delay_holds_the_answer_not_the_lock() {
        let mock = Mock::start().await;
        mock.company().delay_ms = 300;
        let started = std::time::Instant::now();
        let call = send(
            client()
                .get(format!("{}/api/v1/users", mock.url))
                .header("x-api-token", API_TOKEN),
        );
        let check = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            // The request is recorded and the lock free while it waits.
            assert_eq!(mock.company().requests.len(), 1);
            assert!(mock.company().calls.is_empty());
        };
        let ((status, _, _), ()) = tokio::join!(call, check);
        assert_eq!(status, StatusCode::OK);
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    /// A call with the token: `method path`, the query and an optional
    /// JSON body.
    async fn call(
        mock: &Mock,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = client()
            .request(method, format!("{}{path}", mock.url))
            .header("x-api-token", API_TOKEN)
            .query(query);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, _, body) = send(request).await;
        (status, body)
    }

    fn ids(page: &Value) -> Vec<u64> {
        page["data"]
            .as_array()
            .expect("data")
            .iter()
            .filter_map(|r| r["id"].as_u64())
            .collect()
    }

    #[tokio::test]
    async fn deals_updated_since_come_in_pages_by_cursor() {
        let mock = Mock::start().await;
        let person = create_person(&mock, "Jane Doe", "jane@acme.example").await;
        // Deals 1-5 at 12:00:01-05 (the person took 12:00:00).
        for n in 1..=5 {
            let (status, deal) = call(
                &mock,
                "POST",
                "/api/v2/deals",
                &[],
                Some(json!({"title": format!("Deal {n}"), "person_id": person["id"]})),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{deal}");
        }
        // Won in Pipedrive at 12:00:06; deleted at 12:00:07.
        mock.company().change_deal(2, json!({"status": "won"}));
        mock.company().change_deal(3, json!({"is_deleted": true}));
        {
            let company = mock.company();
            let won = &company.deals[&2];
            assert_eq!(won["update_time"], json!("2026-11-23T12:00:06Z"));
            assert_eq!(won["won_time"], json!("2026-11-23T12:00:06Z"));
            assert_eq!(won["close_time"], json!("2026-11-23T12:00:06Z"));
            assert_eq!(won["lost_time"], Value::Null);
            // Changes in Pipedrive are not the API's writes.
            assert_eq!(company.writes.get("deal/2"), Some(&1));
        }
        let mut query = vec![
            ("updated_since", "2026-11-23T12:00:02Z".to_owned()),
            ("sort_by", "update_time".to_owned()),
            ("sort_direction", "asc".to_owned()),
            ("limit", "2".to_owned()),
        ];
        let get = |q: Vec<(&'static str, String)>| {
            let mock = &mock;
            async move {
                let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
                call(mock, "GET", "/api/v2/deals", &q, None).await
            }
        };
        let (status, first) = get(query.clone()).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!(ids(&first), [4, 5]);
        let cursor = first["additional_data"]["next_cursor"]
            .as_str()
            .expect("a cursor")
            .to_owned();
        query.push(("cursor", cursor));
        let (_, second) = get(query.clone()).await;
        assert_eq!(ids(&second), [2]);
        assert_eq!(second["data"][0]["status"], json!("won"));
        assert_eq!(second["additional_data"]["next_cursor"], Value::Null);

        // Without a status: every deal not deleted; with one, those.
        let (_, all) = get(vec![]).await;
        assert_eq!(ids(&all), [1, 2, 4, 5]);
        let (_, won) = get(vec![("status", "won".into())]).await;
        assert_eq!(ids(&won), [2]);
        let (_, deleted) = get(vec![("status", "deleted".into())]).await;
        assert_eq!(ids(&deleted), [3]);
        let (_, newest) = get(vec![
            ("sort_by", "id".into()),
            ("sort_direction", "desc".into()),
            ("person_id", person["id"].to_string()),
            ("pipeline_id", "1".into()),
            ("stage_id", "1".into()),
            ("limit", "3".into()),
        ])
        .await;
        assert_eq!(ids(&newest), [5, 4, 2]);
        let (_, none) = get(vec![("stage_id", "7".into())]).await;
        assert_eq!(ids(&none), Vec::<u64>::new());
        assert_eq!(validate_recorded(&mock), 3);

        let (status, _) = get(vec![("status", "closed".into())]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn a_lead_converts_to_a_deal_after_the_polls_and_takes_its_records() {
        let mock = Mock::start().await;
        let person = create_person(&mock, "Jane Doe", "jane@acme.example").await;
        let (status, lead) = call(
            &mock,
            "POST",
            "/api/v1/leads",
            &[],
            Some(json!({
                "title": "Jane Doe – pricing form",
                "person_id": person["id"],
                "value": {"amount": 999, "currency": "USD"},
                "expected_close_date": "2026-12-31",
            })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let lead_id = lead["data"]["id"].as_str().expect("an id").to_owned();
        let (status, _) = call(
            &mock,
            "POST",
            "/api/v2/activities",
            &[],
            Some(json!({"subject": "Call back", "lead_id": lead_id})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = call(
            &mock,
            "POST",
            "/api/v1/notes",
            &[],
            Some(json!({"content": "Pricing form", "lead_id": lead_id})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        mock.company().convert_polls = 2;

        let convert = format!("/api/v2/leads/{lead_id}/convert/deal");
        let (status, started) =
            call(&mock, "POST", &convert, &[], Some(json!({"stage_id": 3}))).await;
        assert_eq!(status, StatusCode::OK, "{started}");
        assert_eq!(started["additional_data"], Value::Null);
        let conversion = started["data"]["conversion_id"]
            .as_str()
            .expect("a conversion id")
            .to_owned();
        assert!(uuid::Uuid::parse_str(&conversion).is_ok());
        let poll = format!("/api/v2/leads/{lead_id}/convert/status/{conversion}");
        for _ in 0..2 {
            let (status, running) = call(&mock, "GET", &poll, &[], None).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(running["data"]["status"], json!("running"));
            assert_eq!(running["data"]["lead_id"], json!(lead_id));
            assert_eq!(running["data"].get("deal_id"), None);
            assert!(mock.company().deals.is_empty());
            assert!(mock.company().leads.contains_key(&lead_id));
        }
        let (_, done) = call(&mock, "GET", &poll, &[], None).await;
        assert_eq!(done["data"]["status"], json!("completed"), "{done}");
        assert_eq!(done["data"]["deal_id"], json!(1));
        assert_eq!(done["data"]["conversion_id"], json!(conversion));
        // Polled again: the same answer, no second deal.
        let (_, again) = call(&mock, "GET", &poll, &[], None).await;
        assert_eq!(again["data"], done["data"]);
        {
            let company = mock.company();
            assert_eq!(company.deals.len(), 1);
            let deal = &company.deals[&1];
            assert_eq!(deal["title"], json!("Jane Doe – pricing form"));
            assert_eq!(deal["person_id"], person["id"]);
            assert_eq!(deal["owner_id"], json!(1));
            assert_eq!(deal["value"], json!(999));
            assert_eq!(deal["currency"], json!("USD"));
            assert_eq!(deal["stage_id"], json!(3));
            assert_eq!(deal["pipeline_id"], json!(1));
            assert_eq!(deal["status"], json!("open"));
            assert_eq!(deal["expected_close_date"], json!("2026-12-31"));
            assert!(deal["add_time"].is_string());
            let activity = &company.activities[&1];
            assert_eq!(activity["deal_id"], json!(1));
            assert_eq!(activity["lead_id"], Value::Null);
            let note = &company.notes[&1];
            assert_eq!(note["deal_id"], json!(1));
            assert_eq!(note["lead_id"], Value::Null);
            assert!(!company.leads.contains_key(&lead_id));
            assert_eq!(company.writes.get(&format!("convert/{lead_id}")), Some(&1));
            assert_eq!(company.writes.get("deal/1"), Some(&1));
        }
        let (_, moved) = call(
            &mock,
            "GET",
            "/api/v2/activities",
            &[("deal_id", "1")],
            None,
        )
        .await;
        assert_eq!(ids(&moved), [1]);
        let (_, left) = call(
            &mock,
            "GET",
            "/api/v2/activities",
            &[("lead_id", &lead_id)],
            None,
        )
        .await;
        assert_eq!(ids(&left), Vec::<u64>::new());

        // The lead is gone: reading, changing or converting it again → 404.
        let lead_path = format!("/api/v1/leads/{lead_id}");
        let (status, missing) = call(&mock, "GET", &lead_path, &[], None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(missing["error"], json!("requested lead not found"));
        let (status, _) = call(&mock, "PATCH", &lead_path, &[], Some(json!({"title": "X"}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, refused) = call(&mock, "POST", &convert, &[], None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(refused["success"], json!(false));
        assert_eq!(
            mock.company().writes.get(&format!("convert/{lead_id}")),
            Some(&1)
        );
        // An unknown conversion, or one asked for under another lead.
        let other = format!(
            "/api/v2/leads/00000000-0000-4000-8000-000000000099/convert/status/{conversion}"
        );
        let (status, _) = call(&mock, "GET", &other, &[], None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(validate_recorded(&mock), 9);
        // Two converts (the second refused) and five polls.
        let company = mock.company();
        assert_eq!(
            company
                .calls
                .iter()
                .filter(|c| c.contains("/convert/"))
                .count(),
            7
        );
    }

    #[tokio::test]
    async fn archived_leads_are_listed_apart() {
        let mock = Mock::start().await;
        let person = create_person(&mock, "Jane Doe", "jane@acme.example").await;
        for n in 0..3 {
            let (status, _) = call(
                &mock,
                "POST",
                "/api/v1/leads",
                &[],
                Some(json!({"title": format!("Lead {n}"), "person_id": person["id"]})),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED);
        }
        let first = "00000000-0000-4000-8000-000000000001";
        mock.company().archive_lead(first);
        assert_eq!(
            mock.company().leads[first]["update_time"],
            json!("2026-11-23T12:00:04.000Z")
        );
        let (status, patched) = call(
            &mock,
            "PATCH",
            "/api/v1/leads/00000000-0000-4000-8000-000000000002",
            &[],
            Some(json!({"is_archived": true})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(patched["data"]["is_archived"], json!(true));
        let (_, open) = call(&mock, "GET", "/api/v1/leads", &[], None).await;
        assert_eq!(open["data"].as_array().map(Vec::len), Some(1));
        assert_eq!(open["data"][0]["title"], json!("Lead 2"));
        let (status, archived) = call(
            &mock,
            "GET",
            "/api/v1/leads/archived",
            &[("start", "0"), ("limit", "1"), ("sort", "update_time")],
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(archived["data"][0]["id"], json!(first));
        let pagination = &archived["additional_data"]["pagination"];
        assert_eq!(pagination["more_items_in_collection"], json!(true));
        assert_eq!(pagination["next_start"], json!(1));
        // An archived lead still converts.
        let (status, _) = call(
            &mock,
            "POST",
            &format!("/api/v2/leads/{first}/convert/deal"),
            &[],
            Some(json!({"pipeline_id": 2})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(mock.company().tokens_used, 5 + 3 * 10 + 10 + 20 + 40 + 40);
        assert_eq!(validate_recorded(&mock), 6);
    }

    #[tokio::test]
    async fn notes_are_listed_by_record_and_updated() {
        let mock = Mock::start().await;
        let person = create_person(&mock, "Jane Doe", "jane@acme.example").await;
        let (_, lead) = call(
            &mock,
            "POST",
            "/api/v1/leads",
            &[],
            Some(json!({"title": "Lead", "person_id": person["id"]})),
        )
        .await;
        let lead_id = lead["data"]["id"].as_str().expect("an id").to_owned();
        for body in [
            json!({"content": "On the lead", "lead_id": lead_id}),
            json!({"content": "On the person", "person_id": person["id"]}),
            json!({"content": "Also on the lead", "lead_id": lead_id, "pinned_to_lead_flag": 1}),
            json!({"content": "On an organization", "org_id": 5}),
        ] {
            let (status, note) = call(&mock, "POST", "/api/v1/notes", &[], Some(body)).await;
            assert_eq!(status, StatusCode::OK, "{note}");
        }
        let (_, on_lead) = call(
            &mock,
            "GET",
            "/api/v1/notes",
            &[("lead_id", &lead_id), ("start", "0"), ("limit", "1")],
            None,
        )
        .await;
        assert_eq!(ids(&on_lead), [1]);
        let pagination = &on_lead["additional_data"]["pagination"];
        assert_eq!(pagination["more_items_in_collection"], json!(true));
        assert_eq!(pagination["next_start"], json!(1));
        let (_, rest) = call(
            &mock,
            "GET",
            "/api/v1/notes",
            &[("lead_id", &lead_id), ("start", "1"), ("limit", "1")],
            None,
        )
        .await;
        assert_eq!(ids(&rest), [3]);
        assert_eq!(rest["data"][0]["pinned_to_lead_flag"], json!(true));
        assert_eq!(
            rest["additional_data"]["pagination"]["more_items_in_collection"],
            json!(false)
        );
        let person_id = person["id"].to_string();
        let (_, on_person) = call(
            &mock,
            "GET",
            "/api/v1/notes",
            &[("person_id", &person_id)],
            None,
        )
        .await;
        assert_eq!(ids(&on_person), [2]);
        let (_, all) = call(&mock, "GET", "/api/v1/notes", &[], None).await;
        assert_eq!(ids(&all), [1, 2, 3, 4]);

        let (status, updated) = call(
            &mock,
            "PUT",
            "/api/v1/notes/2",
            &[],
            Some(json!({"content": "<p>Called</p>"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(updated["data"]["content"], json!("<p>Called</p>"));
        assert_eq!(updated["data"]["person_id"], person["id"]);
        assert_eq!(updated["data"]["last_update_user_id"], json!(1));
        assert_ne!(updated["data"]["update_time"], updated["data"]["add_time"]);
        assert_eq!(mock.company().writes.get("note/2"), Some(&2));
        let (_, newest) = call(
            &mock,
            "GET",
            "/api/v1/notes",
            &[("sort", "update_time DESC"), ("limit", "1")],
            None,
        )
        .await;
        assert_eq!(ids(&newest), [2]);
        assert_eq!(validate_recorded(&mock), 5);

        // Refused: no content, nothing to attach to, a missing note, a
        // note left attached to nothing.
        for (method, path, body, status) in [
            (
                "POST",
                "/api/v1/notes",
                json!({"lead_id": lead_id}),
                StatusCode::BAD_REQUEST,
            ),
            (
                "POST",
                "/api/v1/notes",
                json!({"content": "Alone"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                "PUT",
                "/api/v1/notes/99",
                json!({"content": "X"}),
                StatusCode::NOT_FOUND,
            ),
            (
                "PUT",
                "/api/v1/notes/4",
                json!({"org_id": null}),
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let (answered, envelope) = call(&mock, method, path, &[], Some(body.clone())).await;
            assert_eq!(answered, status, "{method} {path} {body}");
            assert_eq!(envelope["success"], json!(false));
        }
        assert_eq!(mock.company().notes.len(), 4);
    }

    fn webhook(url: &str) -> Value {
        json!({
            "subscription_url": url,
            "event_action": "*",
            "event_object": "person",
            "name": "lead-capture",
            "version": "2.0",
            "http_auth_user": "u",
            "http_auth_password": "p",
        })
    }

    #[tokio::test]
    async fn webhooks_are_created_listed_and_deleted() {
        let mock = Mock::start().await;
        let (status, created) = call(
            &mock,
            "POST",
            "/api/v1/webhooks",
            &[],
            Some(webhook("https://hooks.example.com/pipedrive")),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["status"], json!("ok"));
        assert_eq!(created["success"], json!(true));
        let hook = &created["data"];
        assert_eq!(hook["id"], json!(1));
        assert_eq!(hook["user_id"], json!(1));
        assert_eq!(hook["owner_id"], json!(1));
        assert_eq!(hook["is_active"], json!(1));
        assert_eq!(hook["type"], json!("general"));
        assert_eq!(hook["version"], json!("2.0"));
        assert_eq!(hook["event_action"], json!("*"));
        assert_eq!(hook["http_auth_user"], json!("u"));
        assert_eq!(hook["remove_time"], Value::Null);
        assert_eq!(hook["last_http_status"], Value::Null);
        assert_eq!(hook["add_time"], json!("2026-11-23T12:00:00.000Z"));
        // `version` defaults to 2.0.
        let mut v1 = webhook("http://hooks.example.com/other");
        v1.as_object_mut().map(|b| b.remove("version"));
        let (status, second) = call(&mock, "POST", "/api/v1/webhooks", &[], Some(v1)).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(second["data"]["version"], json!("2.0"));

        let (status, listed) = call(&mock, "GET", "/api/v1/webhooks", &[], None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(listed["status"], json!("ok"));
        assert_eq!(ids(&listed), [1, 2]);
        let (status, deleted) = call(&mock, "DELETE", "/api/v1/webhooks/1", &[], None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            deleted,
            json!({"status": "ok", "success": true, "data": {"id": 1}})
        );
        let (_, listed) = call(&mock, "GET", "/api/v1/webhooks", &[], None).await;
        assert_eq!(ids(&listed), [2]);
        let (status, missing) = call(&mock, "DELETE", "/api/v1/webhooks/1", &[], None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(missing["errors"]["id"], json!(["not found"]));
        assert_eq!(validate_recorded(&mock), 3);
        // Tokens: create 10 twice, list 10 twice, delete 6 twice.
        assert_eq!(mock.company().tokens_used, 52);

        let with = |field: &str, value: Value| {
            let mut body = webhook("https://hooks.example.com/x");
            body[field] = value;
            body
        };
        for (body, field) in [
            (webhook("not a url"), "subscription_url"),
            (webhook("ftp://hooks.example.com/x"), "subscription_url"),
            (
                webhook("https://acme.pipedrive.com/api/v1/x"),
                "subscription_url",
            ),
            // The v1 action names are not in the document's enum.
            (with("event_action", json!("added")), "event_action"),
            (with("event_object", json!("deals")), "event_object"),
            (with("version", json!("3.0")), "version"),
            (with("name", Value::Null), "name"),
        ] {
            let (status, refused) =
                call(&mock, "POST", "/api/v1/webhooks", &[], Some(body.clone())).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(refused["status"], json!("error"));
            assert_eq!(refused["success"], json!(false));
            assert!(refused["errors"][field].is_array(), "{body} → {refused}");
        }
        let (_, bad_url) = call(
            &mock,
            "POST",
            "/api/v1/webhooks",
            &[],
            Some(webhook("example.com/hook")),
        )
        .await;
        let errors = json!({"subscription_url": ["invalid or non-reachable URL"]});
        assert_eq!(
            bad_url,
            json!({"status": "error", "success": false, "errors": errors})
        );
        assert_eq!(mock.company().webhooks.len(), 1);
    }

    #[tokio::test]
    async fn a_user_has_at_most_40_webhooks() {
        let mock = Mock::start().await;
        mock.company().budget = 100;
        for n in 0..40 {
            let (status, _) = call(
                &mock,
                "POST",
                "/api/v1/webhooks",
                &[],
                Some(webhook(&format!("https://hooks.example.com/{n}"))),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "webhook {n}");
        }
        let (status, refused) = call(
            &mock,
            "POST",
            "/api/v1/webhooks",
            &[],
            Some(webhook("https://hooks.example.com/41")),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(refused["success"], json!(false));
        assert!(refused["errors"]["user_id"].is_array());
        assert_eq!(mock.company().webhooks.len(), 40);
        // Another user still has room; one deleted makes room again.
        mock.company().add_user(2, "sales@company.com");
        let mut other = webhook("https://hooks.example.com/41");
        other["user_id"] = json!(2);
        let (status, _) = call(&mock, "POST", "/api/v1/webhooks", &[], Some(other)).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = call(&mock, "DELETE", "/api/v1/webhooks/7", &[], None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = call(
            &mock,
            "POST",
            "/api/v1/webhooks",
            &[],
            Some(webhook("https://hooks.example.com/42")),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }

    #[tokio::test]
    async fn webhook_payloads_have_pipedrives_shapes() {
        let mock = Mock::start().await;
        let person = create_person(&mock, "Jane Doe", "jane@acme.example").await;
        let (status, _) = call(
            &mock,
            "POST",
            "/api/v1/webhooks",
            &[],
            Some(webhook("https://hooks.example.com/pipedrive")),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let (_, lead) = call(
            &mock,
            "POST",
            "/api/v1/leads",
            &[],
            Some(json!({"title": "Lead", "person_id": person["id"]})),
        )
        .await;
        let lead_id = lead["data"]["id"].as_str().expect("an id").to_owned();
        let mut company = mock.company();
        // The person renamed in the app at 12:00:03.
        company.change_person(1, json!({"name": "Jane Smith"}));

        let v2 = company.webhook_v2("change", "person", "1", json!({"name": "Jane Doe"}));
        let meta = &v2["meta"];
        assert_eq!(meta["action"], json!("change"));
        assert_eq!(meta["entity"], json!("person"));
        assert_eq!(meta["entity_id"], json!("1"));
        assert!(uuid::Uuid::parse_str(meta["id"].as_str().expect("an id")).is_ok());
        assert!(meta["correlation_id"].is_string());
        assert_eq!(meta["company_id"], json!("1"));
        assert_eq!(meta["user_id"], json!("1"));
        assert_eq!(meta["timestamp"], json!("2026-11-23T12:00:03.000Z"));
        assert_eq!(meta["type"], json!("general"));
        assert_eq!(meta["version"], json!("2.0"));
        assert_eq!(meta["webhook_id"], json!("1"));
        assert_eq!(meta["webhook_owner_id"], json!("1"));
        assert_eq!(meta["change_source"], json!("app"));
        assert_eq!(meta["is_bulk_edit"], json!(false));
        assert_eq!(meta["attempt"], json!(1));
        assert_eq!(meta["host"], json!("mock.pipedrive.com"));
        assert_eq!(meta["permitted_user_ids"], json!(["1"]));
        assert_eq!(v2["data"]["id"], json!(1));
        assert_eq!(v2["data"]["name"], json!("Jane Smith"));
        assert_eq!(v2["data"]["emails"][0]["value"], json!("jane@acme.example"));
        assert_eq!(v2["previous"], json!({"name": "Jane Doe"}));
        // Each payload is a new delivery.
        let again = company.webhook_v2("change", "person", "1", Value::Null);
        assert_ne!(again["meta"]["id"], meta["id"]);
        assert_eq!(again["previous"], Value::Null);

        let created = company.webhook_v2("create", "lead", &lead_id, Value::Null);
        assert_eq!(created["meta"]["entity_id"], json!(lead_id));
        assert_eq!(created["data"]["title"], json!("Lead"));
        assert_eq!(
            created["meta"]["timestamp"],
            json!("2026-11-23T12:00:02.000Z")
        );
        let deleted = company.webhook_v2("delete", "person", "1", Value::Null);
        assert_eq!(deleted["data"], Value::Null);
        assert_eq!(deleted["previous"]["name"], json!("Jane Smith"));

        let v1 = company.webhook_v1("updated", "person", "1", json!({"name": "Jane Doe"}));
        assert_eq!(v1["v"], json!(1));
        assert_eq!(v1["event"], json!("updated.person"));
        assert_eq!(v1["retry"], json!(0));
        assert_eq!(
            v1["matches_filters"],
            json!({"current": [], "previous": []})
        );
        let meta = &v1["meta"];
        assert_eq!(meta["v"], json!(1));
        assert_eq!(meta["action"], json!("updated"));
        assert_eq!(meta["object"], json!("person"));
        assert_eq!(meta["id"], json!(1));
        assert_eq!(meta["company_id"], json!(1));
        assert_eq!(meta["user_id"], json!(1));
        let at = DateTime::parse_from_rfc3339("2026-11-23T12:00:03Z").expect("time");
        assert_eq!(meta["timestamp"], json!(at.timestamp()));
        assert_eq!(meta["timestamp_micro"], json!(at.timestamp() * 1_000_000));
        assert_eq!(meta["permitted_user_ids"], json!([1]));
        assert_eq!(meta["trans_pending"], json!(false));
        assert_eq!(meta["is_bulk_update"], json!(false));
        assert_eq!(meta["change_source"], json!("app"));
        // No v1 webhook is stored: the default id.
        assert_eq!(meta["webhook_id"], json!(1));
        let current = &v1["current"];
        assert_eq!(current["id"], json!(1));
        assert_eq!(current["name"], json!("Jane Smith"));
        assert_eq!(current["email"][0]["value"], json!("jane@acme.example"));
        assert_eq!(current["active_flag"], json!(true));
        assert_eq!(current["visible_to"], json!("3"));
        assert_eq!(current["add_time"], json!("2026-11-23 12:00:00"));
        assert_eq!(v1["previous"], json!({"name": "Jane Doe"}));
        let gone = company.webhook_v1("deleted", "person", "1", Value::Null);
        assert_eq!(gone["current"], Value::Null);
        assert_eq!(gone["previous"]["name"], json!("Jane Smith"));
        assert_eq!(gone["event"], json!("deleted.person"));
    }
}
