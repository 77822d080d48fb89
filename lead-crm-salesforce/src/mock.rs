//! (feature `mock`) A Salesforce org on a loopback port, for tests of
//! this crate and of the programs that embed it, following the contract in
//! `../shared/crm-specs/CONTRACTS.md` §1 and the mock checklist (§4): the
//! token endpoint (client credentials, and the JWT bearer flow for the
//! apps registered with [`Mock::expect_jwt`]), versioned data paths,
//! sObject Collections upserts with per-record results, Task upserts (201
//! new, 200 existing), the array error body, `401 INVALID_SESSION_ID` when
//! a session expires, `403 REQUEST_LIMIT_EXCEEDED`, `503`, and
//! `Sforce-Limit-Info` on every data answer.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Query;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::jwt::{Claims, GRANT_TYPE};

/// The client id the mock's token endpoint accepts.
pub const CLIENT_ID: &str = "3MVG9-test-client";
/// The client secret it accepts.
pub const CLIENT_SECRET: &str = "test-secret";
/// The queue the org's assignment rule gives new Leads written without
/// `Sforce-Auto-Assign: FALSE`.
pub const ASSIGNMENT_QUEUE: &str = "00G5w000000AssQ";
/// The daily API limit `Sforce-Limit-Info` reports.
pub const LIMIT: u64 = 15_000;

/// What the org holds and how it behaves.
#[derive(Default)]
pub struct Org {
    /// Leads by external id.
    pub leads: BTreeMap<String, Value>,
    /// Tasks by external id.
    pub tasks: BTreeMap<String, Value>,
    /// Opportunities by external id.
    pub opportunities: BTreeMap<String, Value>,
    /// Active users: e-mail → User Id.
    pub users: BTreeMap<String, String>,
    /// External ID fields the org lacks, as `Object/Field`: an upsert by
    /// one answers `404 NOT_FOUND`.
    pub missing_fields: HashSet<String>,
    /// External ids several records share (a single-record upsert of one
    /// answers `300`).
    pub ambiguous: HashSet<String>,
    /// Every data call: method and path.
    pub calls: Vec<String>,
    /// Successful writes per record, keyed `Object/external id` (a record
    /// written twice was sent twice).
    pub writes: BTreeMap<String, u32>,
    /// Milliseconds each data call waits before it answers (a slow org,
    /// to stop a client mid-batch).
    pub delay_ms: u64,
    /// Token requests answered.
    pub logins: u64,
    /// Sessions handed out and still valid.
    live: HashSet<String>,
    /// Answers for the next data calls, in order (status, body), before any work.
    pub failures: VecDeque<(StatusCode, Value)>,
    /// E-mails the org refuses, with the error it gives.
    pub refused: BTreeMap<String, Value>,
    /// API calls counted today (`Sforce-Limit-Info`'s `api-usage`); set it
    /// to play an org near its limit.
    pub used: u64,
    /// Milliseconds after noon of the last write (SystemModstamp's clock).
    tick: i64,
    /// Milliseconds between two writes' SystemModstamp (0 means 1 000:
    /// a second apart; 1 puts many writes in one second, as a bulk
    /// update does).
    pub step_ms: i64,
    /// Where SystemModstamp's clock starts (default 2026-11-23 12:00 UTC,
    /// the tests' manual clock); a test against a server on the real
    /// clock sets the present.
    pub epoch: Option<chrono::DateTime<chrono::Utc>>,
    /// Query results not yet read, by cursor.
    cursors: BTreeMap<String, Vec<Value>>,
    /// Apps that log in with the JWT bearer flow.
    jwt_apps: Vec<JwtApp>,
    /// The claims of every JWT bearer assertion the token endpoint
    /// accepted, in order (one per login).
    pub jwt_logins: Vec<Value>,
}

/// A connected app with a certificate: who may log in with it and the
/// public key its assertions are checked with.
struct JwtApp {
    client_id: String,
    username: String,
    audience: String,
    key: DecodingKey,
}

impl Org {
    /// Ends every session: the next data call gets `401 INVALID_SESSION_ID`.
    pub fn expire_sessions(&mut self) {
        self.live.clear();
    }

    /// The next SystemModstamp, in Salesforce's format.
    fn stamp(&mut self) -> String {
        self.tick += if self.step_ms > 0 {
            self.step_ms
        } else {
            1_000
        };
        let epoch = self.epoch.unwrap_or_else(|| {
            chrono::DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
                .expect("time")
                .to_utc()
        });
        (epoch + chrono::Duration::milliseconds(self.tick))
            .format("%Y-%m-%dT%H:%M:%S%.3f%z")
            .to_string()
    }

    /// A change made in Salesforce: the Lead with this external id gets
    /// `value` in `field`.
    pub fn set_field(&mut self, ext_id: &str, field: &str, value: &str) {
        let stamp = self.stamp();
        let lead = self.leads.get_mut(ext_id).expect("a stored lead");
        lead[field] = json!(value);
        lead["SystemModstamp"] = json!(stamp);
    }

    /// A change made in Salesforce: the Lead with this external id is
    /// given to the user or queue `owner`.
    pub fn set_owner(&mut self, ext_id: &str, owner: &str) {
        let stamp = self.stamp();
        let lead = self.leads.get_mut(ext_id).expect("a stored lead");
        lead["OwnerId"] = json!(owner);
        lead["SystemModstamp"] = json!(stamp);
    }

    /// A change made in Salesforce at `at`: the Lead with this external
    /// id gets `status`.
    pub fn set_status_at(&mut self, ext_id: &str, status: &str, at: chrono::DateTime<chrono::Utc>) {
        let lead = self.leads.get_mut(ext_id).expect("a stored lead");
        lead["Status"] = json!(status);
        lead["SystemModstamp"] = json!(at.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string());
    }

    /// A change made in Salesforce: the Lead with this external id gets
    /// `status`.
    pub fn set_status(&mut self, ext_id: &str, status: &str) {
        let stamp = self.stamp();
        let lead = self.leads.get_mut(ext_id).expect("a stored lead");
        lead["Status"] = json!(status);
        lead["SystemModstamp"] = json!(stamp);
    }
}

/// The org, shared by the mock's handlers and the test.
pub type Shared = Arc<Mutex<Org>>;

/// A running mock: its base URL and its state.
pub struct Mock {
    /// Where it listens (`http://127.0.0.1:port`): the login URL.
    pub url: String,
    /// Its state.
    pub org: Shared,
}

impl Mock {
    /// Starts the mock on a free loopback port.
    pub async fn start() -> Mock {
        let org: Shared = Arc::default();
        let app = Router::new()
            .route("/services/oauth2/token", post(token))
            .route(
                "/services/data/{version}/composite/sobjects/{object}/{field}",
                patch(upsert_collection),
            )
            .route(
                "/services/data/{version}/sobjects/{object}/{field}/{value}",
                patch(upsert_one),
            )
            .route("/services/data/{version}/query", get(query))
            .route("/services/data/{version}/query/{cursor}", get(more))
            .with_state(org.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Mock { url, org }
    }

    /// The org's state, to arrange and to check.
    pub fn org(&self) -> std::sync::MutexGuard<'_, Org> {
        self.org.lock().expect("org")
    }

    /// Lets `username` log in with the JWT bearer flow through the app
    /// `client_id`, with assertions for `audience` signed by the private
    /// key of `public_key_pem` (an RSA public key, `BEGIN PUBLIC KEY` or
    /// `BEGIN RSA PUBLIC KEY`: what Salesforce reads from the certificate
    /// uploaded to the app).
    ///
    /// # Panics
    ///
    /// When `public_key_pem` is not an RSA public key: a mistake in the
    /// test, not an input the mock answers.
    pub fn expect_jwt(
        &self,
        client_id: &str,
        username: &str,
        audience: &str,
        public_key_pem: &str,
    ) {
        let key = DecodingKey::from_rsa_pem(public_key_pem.as_bytes())
            .expect("expect_jwt takes an RSA public key in PEM");
        self.org().jwt_apps.push(JwtApp {
            client_id: client_id.to_owned(),
            username: username.to_owned(),
            audience: audience.to_owned(),
            key,
        });
    }
}

/// How far ahead the mock lets `exp` be. Salesforce asks for about three
/// minutes; five allows for a clock that runs a little fast.
const JWT_MAX_AHEAD_SECS: u64 = 300;

/// A token refusal: `error` and `error_description`.
type Refusal = (&'static str, &'static str);

/// A `400` token refusal, as Salesforce words it.
fn refusal((error, description): Refusal) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn token(
    State(org): State<Shared>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<BTreeMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str);
    let mut org = org.lock().expect("org");
    match field("grant_type") {
        Some("client_credentials") => {
            let good = field("client_id") == Some(CLIENT_ID)
                && field("client_secret") == Some(CLIENT_SECRET);
            if !good {
                return refusal(("invalid_client", "invalid client credentials"));
            }
        }
        Some(GRANT_TYPE) => match check_assertion(&org, field("assertion").unwrap_or_default()) {
            Ok(claims) => org.jwt_logins.push(claims),
            Err(refused) => return refusal(refused),
        },
        _ => return refusal(("unsupported_grant_type", "grant type not supported")),
    }
    org.logins += 1;
    let token = format!("00D5w000004qGTO!session-{}", org.logins);
    org.live.insert(token.clone());
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    axum::Json(json!({
        "access_token": token,
        "signature": "c2lnbmF0dXJl",
        "scope": "api",
        "instance_url": format!("http://{host}"),
        "id": "https://login.salesforce.com/id/00D5w000004qGTOEA2/0055w00000BhqR0AAJ",
        "token_type": "Bearer",
        "issued_at": "1747332000000"
    }))
    .into_response()
}

/// A JWT bearer assertion checked as Salesforce does: an RS256 signature
/// by the key of the app its `iss` names, then `aud`, `sub` and `exp`.
/// The refusals use the descriptions Salesforce is reported to give
/// (`../shared/crm-specs/CONTRACTS.md` §1.1 names only the `error`
/// codes; "audience is invalid", "user hasn't approved this consumer",
/// "expired authorization code" and "invalid assertion" are Salesforce's
/// answers quoted in public troubleshooting threads). Returns the claims,
/// or the refusal.
fn check_assertion(org: &Org, assertion: &str) -> Result<Value, Refusal> {
    let invalid = || ("invalid_grant", "invalid assertion");
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| invalid())?;
    if header.alg != Algorithm::RS256 {
        return Err(invalid());
    }
    // Which app: the unverified `iss`, as the server must read it before
    // it knows which certificate to check the signature with.
    let unverified: Value =
        jsonwebtoken::dangerous::insecure_decode_claims(assertion).map_err(|_| invalid())?;
    let Some(app) = org
        .jwt_apps
        .iter()
        .find(|app| unverified["iss"].as_str() == Some(app.client_id.as_str()))
    else {
        return Err(("invalid_client_id", "client identifier invalid"));
    };
    // The signature alone; the claims are checked below, one refusal each.
    let mut signature_only = Validation::new(Algorithm::RS256);
    signature_only.required_spec_claims.clear();
    signature_only.validate_exp = false;
    signature_only.validate_aud = false;
    let verified = jsonwebtoken::decode::<Value>(assertion, &app.key, &signature_only)
        .map_err(|_| invalid())?
        .claims;
    let claims: Claims = serde_json::from_value(verified.clone()).map_err(|_| invalid())?;
    if claims.aud != app.audience {
        return Err(("invalid_grant", "audience is invalid"));
    }
    if claims.sub != app.username {
        return Err(("invalid_grant", "user hasn't approved this consumer"));
    }
    let now = crate::jwt::now();
    if claims.exp <= now {
        return Err(("invalid_grant", "expired authorization code"));
    }
    if claims.exp > now + JWT_MAX_AHEAD_SECS {
        return Err(invalid());
    }
    Ok(verified)
}

/// Checks the session and the version, counts the call, and plays a
/// queued failure; `None` when the call may proceed.
fn gate(org: &mut Org, headers: &HeaderMap, version: &str, call: String) -> Option<Response> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !org.live.contains(token) {
        return Some(
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])),
            )
                .into_response(),
        );
    }
    let versioned = version
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(a, b)| {
            !a.is_empty() && a.chars().all(|c| c.is_ascii_digit()) && b.len() == 1
        });
    if !versioned {
        return Some((StatusCode::NOT_FOUND, "unknown version").into_response());
    }
    org.calls.push(call);
    org.used += 1;
    if let Some((status, body)) = org.failures.pop_front() {
        return Some(with_limits(org, (status, axum::Json(body)).into_response()));
    }
    None
}

fn with_limits(org: &Org, mut response: Response) -> Response {
    let info = format!("api-usage={}/{LIMIT}", org.used);
    response
        .headers_mut()
        .insert("Sforce-Limit-Info", info.parse().expect("header value"));
    response
}

/// Where the org keeps `object`'s records (by external id); `None` for
/// an object the mock does not know.
fn table<'a>(org: &'a mut Org, object: &str) -> Option<&'a mut BTreeMap<String, Value>> {
    match object {
        "Lead" => Some(&mut org.leads),
        "Task" => Some(&mut org.tasks),
        "Opportunity" => Some(&mut org.opportunities),
        _ => None,
    }
}

/// The three-letter key prefix of `object`'s ids.
fn prefix(object: &str) -> &'static str {
    match object {
        "Lead" => "00Q",
        "Task" => "00T",
        _ => "006",
    }
}

/// Upserts one record of `object` keyed `key` as Salesforce validates it:
/// the save result (`success`, `id`, `errors`, `created`).
fn save(org: &mut Org, object: &str, key: &str, record: &Value, assign_rules: bool) -> Value {
    let required: &[&str] = match object {
        "Lead" => &["LastName", "Company"],
        "Opportunity" => &["Name", "StageName", "CloseDate"],
        _ => &[],
    };
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|f| record[*f].as_str().is_none_or(str::is_empty))
        .collect();
    if !missing.is_empty() {
        let message = format!("Required fields are missing: [{}]", missing.join(", "));
        return failure("REQUIRED_FIELD_MISSING", &message, &missing);
    }
    if object == "Lead"
        && let Some(email) = record["Email"].as_str()
        && let Some(error) = org.refused.get(email)
    {
        return json!({"success": false, "errors": [error]});
    }
    if object == "Task" {
        let who = record["WhoId"].as_str().unwrap_or_default();
        if !org.leads.values().any(|l| l["Id"] == json!(who)) {
            return failure(
                "MALFORMED_ID",
                "WhoId: id value of incorrect type",
                &["WhoId"],
            );
        }
    }
    if let Some(owner) = record["OwnerId"].as_str()
        && !org.users.values().any(|id| id == owner)
    {
        return failure(
            "INVALID_CROSS_REFERENCE_KEY",
            "Owner ID: owner cannot be blank",
            &["OwnerId"],
        );
    }
    let stamp = org.stamp();
    let Some(rows) = table(org, object) else {
        return failure("INVALID_TYPE", "sObject type is not supported", &[]);
    };
    let created = !rows.contains_key(key);
    let id = match rows.get(key) {
        Some(stored) => stored["Id"].as_str().unwrap_or_default().to_owned(),
        None => format!("{}5w{:010}", prefix(object), rows.len() + 1),
    };
    let mut stored = rows.get(key).cloned().unwrap_or_else(|| json!({}));
    if let (Some(into), Some(fields)) = (stored.as_object_mut(), record.as_object()) {
        for (name, value) in fields {
            into.insert(name.clone(), value.clone());
        }
    }
    stored["Id"] = json!(id);
    stored["SystemModstamp"] = json!(stamp);
    if object == "Lead" && assign_rules {
        // The org's active assignment rule: without `Sforce-Auto-Assign:
        // FALSE` it decides the owner, whatever the record said.
        stored["OwnerId"] = json!(ASSIGNMENT_QUEUE);
    }
    rows.insert(key.to_owned(), stored);
    *org.writes.entry(format!("{object}/{key}")).or_default() += 1;
    json!({"id": id, "success": true, "errors": [], "created": created})
}

/// Waits the org's `delay_ms` (without holding its lock).
async fn slow(org: &Shared) {
    let delay = org.lock().expect("org").delay_ms;
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
}

/// Whether the org's assignment rules run on this write: unless the
/// client says `Sforce-Auto-Assign: FALSE`.
fn assign_rules(headers: &HeaderMap) -> bool {
    !headers
        .get("sforce-auto-assign")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("false"))
}

async fn upsert_collection(
    State(org): State<Shared>,
    Path((version, object, field)): Path<(String, String, String)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    slow(&org).await;
    let mut org = org.lock().expect("org");
    let call = format!("PATCH /composite/sobjects/{object}/{field}");
    if let Some(early) = gate(&mut org, &headers, &version, call) {
        return early;
    }
    if let Some(missing) = missing_field(&org, &object, &field) {
        return missing;
    }
    let records = body["records"].as_array().cloned().unwrap_or_default();
    if body["allOrNone"] != json!(false) || records.is_empty() || records.len() > 200 {
        let error = json!([{"message": "records: 1 to 200, allOrNone given", "errorCode": "INVALID_INPUT"}]);
        return with_limits(
            &org,
            (StatusCode::BAD_REQUEST, axum::Json(error)).into_response(),
        );
    }
    let rules = assign_rules(&headers);
    let mut results = Vec::with_capacity(records.len());
    for record in records {
        let Some(key) = record[&field].as_str().map(str::to_owned) else {
            results.push(failure(
                "MISSING_ARGUMENT",
                &format!("{field} not specified"),
                &[&field],
            ));
            continue;
        };
        if record["attributes"]["type"] != json!(object) {
            let message = format!("attributes.type must be {object}");
            results.push(failure("INVALID_TYPE", &message, &[]));
            continue;
        }
        results.push(save(&mut org, &object, &key, &record, rules));
    }
    with_limits(&org, axum::Json(Value::Array(results)).into_response())
}

/// `404 NOT_FOUND` when the org lacks the External ID field `field`.
fn missing_field(org: &Org, object: &str, field: &str) -> Option<Response> {
    if !org.missing_fields.contains(&format!("{object}/{field}")) {
        return None;
    }
    let error = json!([{"message": format!("Provided external ID field does not exist or is not accessible: {field}"), "errorCode": "NOT_FOUND"}]);
    Some(with_limits(
        org,
        (StatusCode::NOT_FOUND, axum::Json(error)).into_response(),
    ))
}

fn failure(code: &str, message: &str, fields: &[&str]) -> Value {
    json!({"success": false, "errors": [{"statusCode": code, "message": message, "fields": fields}]})
}

/// The single-record upsert by external id: 201 created, 200 updated,
/// 300 when several records hold the id, 400 with the array error body.
async fn upsert_one(
    State(org): State<Shared>,
    Path((version, object, field, value)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    slow(&org).await;
    let mut org = org.lock().expect("org");
    let call = format!("PATCH /sobjects/{object}/{field}");
    if let Some(early) = gate(&mut org, &headers, &version, call) {
        return early;
    }
    if let Some(missing) = missing_field(&org, &object, &field) {
        return missing;
    }
    let bad = |message: &str, code: &str| {
        let error = json!([{"message": message, "errorCode": code}]);
        (StatusCode::BAD_REQUEST, axum::Json(error)).into_response()
    };
    if body.get("Id").is_some() || body.get(&field).is_some() {
        let answer = bad(
            "the body must not hold Id or the external id",
            "INVALID_FIELD",
        );
        return with_limits(&org, answer);
    }
    if org.ambiguous.contains(&value) {
        let urls = json!([
            format!(
                "/services/data/{version}/sobjects/{object}/{}5w0000000001",
                prefix(&object)
            ),
            format!(
                "/services/data/{version}/sobjects/{object}/{}5w0000000002",
                prefix(&object)
            ),
        ]);
        return with_limits(
            &org,
            (StatusCode::MULTIPLE_CHOICES, axum::Json(urls)).into_response(),
        );
    }
    let rules = assign_rules(&headers);
    let result = save(&mut org, &object, &value, &body, rules);
    let answer = if result["success"] == json!(true) {
        let status = if result["created"] == json!(true) {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        (status, axum::Json(result)).into_response()
    } else {
        let errors: Vec<Value> = result["errors"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|mut e| {
                if let Some(e) = e.as_object_mut()
                    && let Some(code) = e.remove("statusCode")
                {
                    e.insert("errorCode".into(), code);
                }
                e
            })
            .collect();
        (StatusCode::BAD_REQUEST, axum::Json(Value::Array(errors))).into_response()
    };
    with_limits(&org, answer)
}

/// Records per query page (small, so tests see `nextRecordsUrl`).
const PAGE: usize = 2;

/// `SELECT Id, …, Status, …, SystemModstamp FROM Lead [WHERE
/// SystemModstamp >= <iso>] ORDER BY SystemModstamp, Id [LIMIT n]`: the
/// one query shape the adapter sends, read literally (`>` works too).
async fn query(
    State(org): State<Shared>,
    Path(version): Path<String>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let mut org = org.lock().expect("org");
    if let Some(early) = gate(&mut org, &headers, &version, "GET /query".into()) {
        return early;
    }
    let q = params.get("q").cloned().unwrap_or_default();
    let malformed = || {
        let error = json!([{"message": "unexpected query", "errorCode": "MALFORMED_QUERY"}]);
        (StatusCode::BAD_REQUEST, axum::Json(error)).into_response()
    };
    if q == "SELECT Id, Email FROM User WHERE IsActive = true ORDER BY Id" {
        let mut rows: Vec<Value> = org
            .users
            .iter()
            .map(|(email, id)| {
                json!({
                    "attributes": {"type": "User", "url": format!("/services/data/{version}/sobjects/User/{id}")},
                    "Id": id,
                    "Email": email,
                })
            })
            .collect();
        rows.sort_by_key(|r| r["Id"].as_str().unwrap_or_default().to_owned());
        let answer = page_of(&mut org, &version, rows);
        return with_limits(&org, answer);
    }
    // Any select list that names Id, Status and SystemModstamp: each
    // field comes back as stored (null when the record has none).
    let Some((selected, rest)) = q
        .strip_prefix("SELECT ")
        .and_then(|q| q.split_once(" FROM Lead"))
    else {
        return with_limits(&org, malformed());
    };
    let fields: Vec<&str> = selected.split(", ").collect();
    if !["Id", "Status", "SystemModstamp"]
        .iter()
        .all(|f| fields.contains(f))
    {
        return with_limits(&org, malformed());
    }
    let bound = |operator: &str| {
        rest.split_once(&format!("WHERE SystemModstamp {operator} "))
            .and_then(|(_, after)| after.split_whitespace().next())
            .map(|t| chrono::DateTime::parse_from_rfc3339(t).expect("a datetime literal"))
    };
    let (since, inclusive) = match (bound(">="), bound(">")) {
        (Some(at), _) => (Some(at), true),
        (None, at) => (at, false),
    };
    if !rest.contains("ORDER BY SystemModstamp, Id") {
        return with_limits(&org, malformed());
    }
    let limit = rest
        .split_once(" LIMIT ")
        .map(|(_, n)| n.trim().parse::<usize>())
        .transpose();
    let Ok(limit) = limit else {
        return with_limits(&org, malformed());
    };
    let stamp_of = |l: &Value| {
        chrono::DateTime::parse_from_str(
            l["SystemModstamp"].as_str().unwrap_or_default(),
            "%Y-%m-%dT%H:%M:%S%.f%z",
        )
        .expect("stored stamp")
    };
    let mut rows: Vec<Value> = org
        .leads
        .values()
        .filter(|l| since.is_none_or(|s| stamp_of(l) > s || (inclusive && stamp_of(l) == s)))
        .map(|l| {
            let mut row = serde_json::Map::new();
            row.insert(
                "attributes".into(),
                json!({"type": "Lead", "url": format!("/services/data/{version}/sobjects/Lead/{}", l["Id"].as_str().unwrap_or_default())}),
            );
            for field in &fields {
                row.insert((*field).to_owned(), l[*field].clone());
            }
            Value::Object(row)
        })
        .collect();
    rows.sort_by_key(|r| (stamp_of(r), r["Id"].as_str().unwrap_or_default().to_owned()));
    rows.truncate(limit.unwrap_or(usize::MAX));
    let answer = page_of(&mut org, &version, rows);
    with_limits(&org, answer)
}

async fn more(
    State(org): State<Shared>,
    Path((version, cursor)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut org = org.lock().expect("org");
    if let Some(early) = gate(&mut org, &headers, &version, "GET /query/next".into()) {
        return early;
    }
    let Some(rows) = org.cursors.remove(&cursor) else {
        let error =
            json!([{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]);
        return with_limits(
            &org,
            (StatusCode::BAD_REQUEST, axum::Json(error)).into_response(),
        );
    };
    let answer = page_of(&mut org, &version, rows);
    with_limits(&org, answer)
}

/// The first `PAGE` rows, and a cursor for the rest.
fn page_of(org: &mut Org, version: &str, mut rows: Vec<Value>) -> Response {
    let total = rows.len();
    let rest = rows.split_off(PAGE.min(rows.len()));
    let mut page = json!({"totalSize": total, "done": rest.is_empty(), "records": rows});
    if !rest.is_empty() {
        let cursor = format!("01gRO{:08}-{}", org.cursors.len() + 1, PAGE);
        page["nextRecordsUrl"] = json!(format!("/services/data/{version}/query/{cursor}"));
        org.cursors.insert(cursor, rest);
    }
    axum::Json(page).into_response()
}
