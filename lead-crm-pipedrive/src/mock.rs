//! (feature `mock`) A Pipedrive company on a loopback port, for tests of
//! this crate and of the programs that embed it, following the contract in
//! `../shared/crm-specs/CONTRACTS.md` §2 and the mock checklist (§4), with
//! field names and status codes from the official OpenAPI documents
//! (`lead-crm-pipedrive-spec/openapi/`):
//!
//! - v2 persons (search by e-mail, create, read, change, list changed since
//!   with cursor paging), deals and activities: creates answer **200**;
//! - v1 leads (UUID ids, create **201**, `start` paging), notes, users and
//!   `users/me`;
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
    /// Notes by id, in the v1 shape.
    pub notes: BTreeMap<u64, Value>,
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
    /// `lead/<uuid>`, `activity/<id>`, `deal/<id>`, `note/<id>` (a record
    /// written twice was sent twice).
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
    AddDeal,
    GetDeal(String),
    PatchDeal(String),
    AddActivity,
    ListActivities,
    GetActivity(String),
    PatchActivity(String),
    ListLeads,
    AddLead,
    GetLead(String),
    PatchLead(String),
    AddNote,
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
            ("POST", ["api", "v2", "deals"]) => Route::AddDeal,
            ("GET", ["api", "v2", "deals", i]) => Route::GetDeal(id(i)),
            ("PATCH", ["api", "v2", "deals", i]) => Route::PatchDeal(id(i)),
            ("POST", ["api", "v2", "activities"]) => Route::AddActivity,
            ("GET", ["api", "v2", "activities"]) => Route::ListActivities,
            ("GET", ["api", "v2", "activities", i]) => Route::GetActivity(id(i)),
            ("PATCH", ["api", "v2", "activities", i]) => Route::PatchActivity(id(i)),
            ("GET", ["api", "v1", "leads"]) => Route::ListLeads,
            ("POST", ["api", "v1", "leads"]) => Route::AddLead,
            ("GET", ["api", "v1", "leads", i]) => Route::GetLead(id(i)),
            ("PATCH", ["api", "v1", "leads", i]) => Route::PatchLead(id(i)),
            ("POST", ["api", "v1", "notes"]) => Route::AddNote,
            ("GET", ["api", "v1", "users"]) => Route::Users,
            ("GET", ["api", "v1", "users", "me"]) => Route::Me,
            _ => return None,
        })
    }

    /// The endpoint's `x-token-cost` in the OpenAPI documents.
    fn cost(&self) -> u64 {
        match self {
            Route::GetPerson(_) | Route::GetDeal(_) | Route::GetActivity(_) => 1,
            Route::ListPersons | Route::ListActivities => 10,
            Route::AddPerson
            | Route::PatchPerson(_)
            | Route::AddDeal
            | Route::PatchDeal(_)
            | Route::AddActivity
            | Route::PatchActivity(_) => 5,
            Route::SearchPersons => 20,
            Route::GetLead(_) | Route::Me => 2,
            Route::ListLeads | Route::Users => 20,
            Route::AddLead | Route::PatchLead(_) | Route::AddNote => 10,
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
                | Route::AddNote
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
            Route::ListLeads => self.list_leads(request),
            Route::AddLead => self.add_lead(object(request)?),
            Route::GetLead(id) => {
                let lead = self.leads.get(&id).ok_or_else(lead_not_found)?;
                Ok(ok(lead.clone()))
            }
            Route::PatchLead(id) => self.patch_lead(&id, object(request)?),
            Route::AddNote => self.add_note(object(request)?),
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

    /// `GET /api/v2/activities?lead_id=&person_id=&deal_id=&limit=&cursor=`,
    /// by id.
    fn list_activities(&self, request: &Request) -> Result<Answer, Answer> {
        let limit = page_size(request)?;
        let after = match request.param("cursor") {
            None => None,
            Some(c) => Some(decode_cursor(c).ok_or_else(|| bad("invalid cursor"))?),
        };
        let number = |name: &str| {
            request
                .param(name)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| bad(&format!("{name} must be an integer")))
                })
                .transpose()
        };
        let (person, deal) = (number("person_id")?, number("deal_id")?);
        let lead = request.param("lead_id");
        let mut rows: Vec<(u64, &Value)> = self
            .activities
            .iter()
            .filter(|(_, a)| lead.is_none_or(|l| a["lead_id"].as_str() == Some(l)))
            .filter(|(_, a)| person.is_none_or(|p| a["person_id"].as_u64() == Some(p)))
            .filter(|(_, a)| deal.is_none_or(|d| a["deal_id"].as_u64() == Some(d)))
            .filter(|(id, _)| after.is_none_or(|(_, last)| **id > last))
            .map(|(id, a)| (*id, a))
            .collect();
        rows.sort_by_key(|(id, _)| *id);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = match rows.last() {
            Some((id, _)) if more => json!(encode_cursor(0, *id)),
            _ => Value::Null,
        };
        let data: Vec<Value> = rows.into_iter().map(|(_, a)| a.clone()).collect();
        Ok(ok_with(Value::Array(data), json!({"next_cursor": next})))
    }

    fn list_persons(&self, request: &Request) -> Result<Answer, Answer> {
        let since = query_time(request, "updated_since")?;
        let until = query_time(request, "updated_until")?;
        let sort_by = request.param("sort_by").unwrap_or("id");
        if !matches!(sort_by, "id" | "update_time" | "add_time") {
            return Err(bad("sort_by must be one of id, update_time, add_time"));
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
        let owner = request
            .param("owner_id")
            .map(|s| {
                s.parse::<u64>()
                    .map_err(|_| bad("owner_id must be an integer"))
            })
            .transpose()?;
        let key_of = |id: u64, p: &Value| match sort_by {
            "update_time" => (millis(&p["update_time"]), id),
            "add_time" => (millis(&p["add_time"]), id),
            _ => (i64::try_from(id).unwrap_or(i64::MAX), id),
        };
        let mut rows: Vec<((i64, u64), &Value)> = self
            .persons
            .iter()
            .filter(|(_, p)| p["is_deleted"] != json!(true))
            .filter(|(_, p)| since.is_none_or(|s| millis(&p["update_time"]) >= s))
            .filter(|(_, p)| until.is_none_or(|u| millis(&p["update_time"]) < u))
            .filter(|(_, p)| owner.is_none_or(|o| p["owner_id"].as_u64() == Some(o)))
            .map(|(id, p)| (key_of(*id, p), p))
            .collect();
        rows.sort_by_key(|(key, _)| *key);
        if descending {
            rows.reverse();
        }
        if let Some(cursor) = after {
            rows.retain(|(key, _)| {
                if descending {
                    *key < cursor
                } else {
                    *key > cursor
                }
            });
        }
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = match rows.last() {
            Some(((key, id), _)) if more => json!(encode_cursor(*key, *id)),
            _ => Value::Null,
        };
        let data: Vec<Value> = rows.into_iter().map(|(_, p)| p.clone()).collect();
        Ok(ok_with(Value::Array(data), json!({"next_cursor": next})))
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

    fn add_person(&mut self, body: &Map<String, Value>) -> Result<Answer, Answer> {
        required_str(body, "name")?;
        let fields = self.person_fields(body)?;
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

    fn list_leads(&self, request: &Request) -> Result<Answer, Answer> {
        let start = match request.param("start") {
            None => 0,
            Some(s) => s
                .parse::<usize>()
                .map_err(|_| bad("start must be a non-negative integer"))?,
        };
        let limit = page_size(request)?;
        let since = query_time(request, "updated_since")?;
        let filter = |name: &str| -> Result<Option<u64>, Answer> {
            request
                .param(name)
                .map(|s| {
                    s.parse()
                        .map_err(|_| bad(&format!("{name} must be an integer")))
                })
                .transpose()
        };
        let (owner, person, org) = (
            filter("owner_id")?,
            filter("person_id")?,
            filter("organization_id")?,
        );
        // A bare field name, or `field ASC|DESC` as the description has it.
        let sort = request.param("sort").unwrap_or("id");
        let (field, descending) = match sort.split_once(' ') {
            Some((field, dir)) => (field, dir.trim().eq_ignore_ascii_case("desc")),
            None => (sort, false),
        };
        let mut rows: Vec<&Value> = self
            .leads
            .values()
            .filter(|l| l["is_archived"] != json!(true))
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
        Ok(ok_with(
            Value::Array(page),
            json!({"pagination": pagination}),
        ))
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
        let me = self.me();
        let mut deal = json!({
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
        });
        merge(&mut deal, &Value::Object(fields));
        self.deals.insert(id, deal.clone());
        self.count_write(format!("deal/{id}"));
        Ok(ok(deal))
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
        if deal["status"] != status_before {
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

    fn add_note(&mut self, body: &Map<String, Value>) -> Result<Answer, Answer> {
        let content = required_str(body, "content")?;
        let lead = str_field(body, "lead_id")?;
        let person = person_ref(self, body)?;
        let deal = int_field(body, "deal_id")?;
        let org = int_field(body, "org_id")?;
        if lead.is_none() && person.is_none() && deal.is_none() {
            return Err(bad("one of lead_id, person_id or deal_id is required"));
        }
        if let Some(lead) = lead
            && !self.leads.contains_key(lead)
        {
            return Err(bad(&format!("lead_id {lead}: lead not found")));
        }
        if let Some(deal) = deal
            && !self.deals.contains_key(&deal)
        {
            return Err(bad(&format!("deal_id {deal}: deal not found")));
        }
        let user = owner_field(
            self,
            &body
                .get("user_id")
                .map(|u| Map::from_iter([("owner_id".to_owned(), u.clone())]))
                .unwrap_or_default(),
        )?
        .unwrap_or_else(|| self.me());
        let id = next_id(&self.notes);
        let stamp = v1_time(self.now());
        let note = json!({
            "id": id,
            "content": content,
            "lead_id": lead,
            "person_id": person,
            "deal_id": deal,
            "org_id": org,
            "user_id": user,
            "add_time": stamp,
            "update_time": stamp,
            "active_flag": true,
            "pinned_to_lead_flag": false,
            "pinned_to_deal_flag": false,
            "pinned_to_person_flag": false,
            "pinned_to_organization_flag": false,
            "last_update_user_id": null,
        });
        self.notes.insert(id, note.clone());
        self.count_write(format!("note/{id}"));
        // The v1 document answers `addNote` with 200 (not 201 like leads).
        Ok(ok(note))
    }
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
}
