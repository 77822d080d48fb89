//! The original system's users move over without surprises: its
//! environment variables are honoured or named at start-up (never with
//! their values), its routing metrics are counted, its README's requests
//! get the answers it documents, and a plain browser form gets a page in
//! the visitor's language. All against the real binary on SQLite.

use reqwest::header::{ACCEPT, ACCEPT_LANGUAGE, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{API_KEY, SECRET, Server, refused_start, reps_file};

/// The rep the seed's README assigns a lead to, and a colleague.
const VENDEDOR: &str = "vendedor@empresa.com";
const OTRA: &str = "otra@empresa.com";

/// The lead fields the seed's list example shows, at the top level.
const SEED_FIELDS: [&str; 10] = [
    "lead_ext_id",
    "email",
    "first_name",
    "last_name",
    "score",
    "priority",
    "stage",
    "assigned_to",
    "estimated_value",
    "probability_pct",
];

/// The body of the seed's capture `curl` (`-d '…'`), byte for byte.
const SEED_CAPTURE: &str = r#"{
    "email": "cliente@empresa.com",
    "first_name": "Juan",
    "last_name": "Pérez",
    "phone": "+34612345678",
    "company": "Mi Empresa SL",
    "source": "web"
  }"#;

/// The seed's batch example, byte for byte.
const SEED_BATCH: &str = r#"{
  "leads": [
    {
      "email": "cliente1@empresa.com",
      "first_name": "Juan",
      "last_name": "Pérez"
    },
    {
      "email": "cliente2@empresa.com",
      "first_name": "María",
      "last_name": "García"
    }
  ]
}"#;

/// What a browser sends with a form post.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

/// A fresh SQLite database in its own directory (kept while the guard lives).
fn sqlite() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("seed.db").display());
    (dir, url)
}

/// An answer: status, `Content-Type` and body text.
struct Answer {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

/// Sends `body` as written with `headers`.
async fn send(
    server: &Server,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let mut request = server
        .client
        .request(method, format!("http://{}{path}", server.addr));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body.to_owned());
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("body");
    Answer {
        status,
        content_type,
        text,
    }
}

/// Posts `body` as written, signed as the seed says: `X-Webhook-Signature`
/// is the hex HMAC-SHA256 of the raw body with the webhook secret.
async fn signed(server: &Server, path: &str, body: &str) -> Answer {
    let signature = lead_http::signature::sign_legacy(SECRET, body.as_bytes());
    send(
        server,
        Method::POST,
        path,
        &[
            ("content-type", "application/json"),
            ("x-webhook-signature", &signature),
        ],
        Some(body),
    )
    .await
}

/// Calls the lead API with the read-write key and a JSON body as written.
async fn api_raw(server: &Server, method: Method, path: &str, body: &str) -> Answer {
    let auth = format!("Bearer {API_KEY}");
    send(
        server,
        method,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(body),
    )
    .await
}

/// Posts a url-encoded form as a browser does.
async fn browser_form(server: &Server, body: &str, language: &str) -> Answer {
    send(
        server,
        Method::POST,
        "/webhook/lead",
        &[
            (CONTENT_TYPE.as_str(), "application/x-www-form-urlencoded"),
            (ACCEPT.as_str(), BROWSER_ACCEPT),
            (ACCEPT_LANGUAGE.as_str(), language),
        ],
        Some(body),
    )
    .await
}

/// The lead with `email`, found through the list's text search.
async fn lead_by_email(server: &Server, email: &str) -> Value {
    let (status, list) = server
        .api(
            Method::GET,
            &format!("/api/leads?q={}", email.replace('@', "%40")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let id = list["leads"]
        .as_array()
        .and_then(|leads| leads.iter().find(|l| l["email"] == email))
        .and_then(|l| l["lead_ext_id"].as_str())
        .unwrap_or_else(|| panic!("no lead {email} in {list}"))
        .to_owned();
    let (status, lead) = server
        .api(Method::GET, &format!("/api/leads/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{lead}");
    lead
}

/// The value of an unlabelled sample in Prometheus text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let mut parts = line.split_whitespace();
            (parts.next() == Some(name))
                .then(|| parts.next().and_then(|v| v.parse().ok()))
                .flatten()
        })
}

async fn metrics(server: &Server) -> String {
    let answer = send(server, Method::GET, "/metrics", &[], None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.text
}

fn assert_seed_fields(lead: &Value) {
    for field in SEED_FIELDS {
        assert!(
            lead.get(field).is_some(),
            "`{field}` is not at the top level of {lead}"
        );
    }
}

#[test]
fn the_seed_signature_and_key_hash_are_hmac_sha256_and_sha256_hex() {
    // RFC 4231-style published vectors: the helpers the tests sign and
    // configure keys with are what the seed and the README describe.
    assert_eq!(
        lead_http::signature::sign_legacy("key", b"The quick brown fox jumps over the lazy dog"),
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    );
    assert_eq!(
        lead_http::hash_key("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variables_the_server_does_not_read_are_named_at_start_up_and_their_values_never_logged() {
    let (_dir, url) = sqlite();
    let server = Server::start_with(
        &url,
        &[
            ("PIPEDRIVE_API_TOKEN", "hunter2-secret"),
            ("SLACK_WEBHOOK_URL", "https://hooks.example/x"),
        ],
    );
    // A request, so anything logged while serving is in the log too.
    let (status, answer) = server.capture(&json!({"email": "uno@cliente.es"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let log = server.stop();
    let (var, why) = ("PIPEDRIVE_API_TOKEN", "CRM_TYPE is not pipedrive");
    assert!(
        log.lines().any(|line| line.contains("WARN")
            && line.contains(&format!("{var} is set but"))
            && line.contains(why)),
        "no warning names {var}:\n{log}"
    );
    // The seed's Slack variable is read: alerts go to that channel.
    assert!(
        log.lines()
            .any(|line| line.contains("notifications on") && line.contains("slack")),
        "SLACK_WEBHOOK_URL not read:\n{log}"
    );
    assert!(
        !log.contains("SLACK_WEBHOOK_URL is set but"),
        "SLACK_WEBHOOK_URL named as ignored:\n{log}"
    );
    assert!(
        !log.contains("PIPEDRIVE_COMPANY_DOMAIN"),
        "an unset variable named:\n{log}"
    );
    assert!(
        !log.contains("hunter2-secret"),
        "a secret in the log:\n{log}"
    );
    assert!(!log.contains("hooks.example"), "a value in the log:\n{log}");
}

#[test]
fn a_salesforce_crm_without_its_credentials_stops_the_start_naming_them() {
    let (code, log) = refused_start(&[
        ("CRM_TYPE", "salesforce"),
        ("SALESFORCE_PASSWORD", "hunter2-secret"),
    ]);
    assert_eq!(code, Some(2), "a configuration error:\n{log}");
    for var in ["SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET"] {
        assert!(log.contains(var), "{var} not named:\n{log}");
    }
    assert!(
        !log.contains("hunter2-secret"),
        "a secret in the log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_debug_logs_refused_requests_when_rust_log_is_not_set() {
    let (_dir, url) = sqlite();
    // A blank RUST_LOG is not set.
    let server = Server::start_with(&url, &[("RUST_LOG", ""), ("WEBHOOK_DEBUG", "true")]);
    let answer = send(&server, Method::GET, "/api/leads", &[], None).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text);
    let log = server.stop();
    assert!(
        log.lines().any(|l| l.contains("DEBUG")
            && l.contains("lead_http")
            && l.contains("request refused")),
        "the refused request is not in the debug log:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("DEBUG") && l.contains("WEBHOOK_DEBUG")),
        "{log}"
    );

    // Without it, the same request leaves no debug line.
    let (_dir, url) = sqlite();
    let server = Server::start_with(&url, &[("RUST_LOG", ""), ("WEBHOOK_DEBUG", "false")]);
    let answer = send(&server, Method::GET, "/api/leads", &[], None).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text);
    let log = server.stop();
    assert!(log.contains("listening"), "{log}");
    assert!(!log.contains("DEBUG"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_default_region_reads_national_phones_of_leads_without_a_country() {
    let (_dir, url) = sqlite();
    let server = Server::start_with(&url, &[("LEAD_DEFAULT_REGION", "FR")]);
    let (status, answer) = server
        .capture(&json!({"email": "sans.pays@client.fr", "phone": "06 12 34 56 78"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let lead = lead_by_email(&server, "sans.pays@client.fr").await;
    assert_eq!(lead["phone"], "+33612345678", "{lead}");

    // The lead's own country comes first.
    let (status, answer) = server
        .capture(&json!({"email": "con.pais@cliente.es", "phone": "612 345 678", "country": "ES"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let lead = lead_by_email(&server, "con.pais@cliente.es").await;
    assert_eq!(lead["phone"], "+34612345678", "{lead}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_metrics_count_assignments_and_reassignments() {
    let (dir, url) = sqlite();
    let reps = reps_file(dir.path(), &[VENDEDOR, OTRA]);
    let server = Server::start_with(&url, &[("LEAD_REPS", &reps)]);

    let text = metrics(&server).await;
    assert_eq!(
        sample(&text, "sales_routing_assigned_total"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "sales_routing_reassigned_total"),
        Some(0.0),
        "{text}"
    );

    let mut leads = Vec::new();
    for email in ["uno@cliente.es", "dos@otro.es"] {
        let (status, answer) = server.capture(&json!({"email": email})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        let owner = answer["assigned_to"].as_str().expect("assigned at capture");
        assert!([VENDEDOR, OTRA].contains(&owner), "{answer}");
        leads.push((
            answer["lead_ext_id"].as_str().expect("id").to_owned(),
            owner.to_owned(),
        ));
    }
    let text = metrics(&server).await;
    assert_eq!(
        sample(&text, "sales_routing_assigned_total"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "sales_routing_reassigned_total"),
        Some(0.0),
        "{text}"
    );

    let (id, owner) = &leads[0];
    let other = if owner == VENDEDOR { OTRA } else { VENDEDOR };
    let (status, moved) = server
        .api(
            Method::PUT,
            &format!("/api/leads/{id}/assign"),
            Some(&json!({"assigned_to": other})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["assigned_to"], other, "{moved}");
    let text = metrics(&server).await;
    assert_eq!(
        sample(&text, "sales_routing_reassigned_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "sales_routing_assigned_total"),
        Some(2.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_readme_examples_get_the_answers_it_documents() {
    let (dir, url) = sqlite();
    let reps = reps_file(dir.path(), &[VENDEDOR, OTRA]);
    // `common::spawn` sets WEBHOOK_SECRET_KEY and
    // LEAD_API_KEYS="<sha256 hex of API_KEY>:read,write".
    let server = Server::start_with(&url, &[("LEAD_REPS", &reps)]);

    // The capture curl.
    let answer = signed(&server, "/webhook/lead", SEED_CAPTURE).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    let captured = answer.json();
    assert_eq!(captured["success"], true, "{captured}");
    assert!(
        captured["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{captured}"
    );
    assert_eq!(captured["lead_email"], "cliente@empresa.com", "{captured}");
    assert_eq!(captured["status"], "created", "{captured}");
    let cliente = captured["lead_ext_id"].as_str().expect("lead_ext_id");
    let code = cliente.strip_prefix("WEB-").expect("WEB- prefix");
    assert_eq!(code.chars().count(), 8, "{cliente}");

    // The batch example.
    let answer = signed(&server, "/webhook/lead/batch", SEED_BATCH).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    let batch = answer.json();
    assert_eq!(batch["accepted"], 2, "{batch}");

    // A lead that scores high (SPEC's rule table: 40 + 20 + 10 + 5), moved
    // to qualified by hand.
    let (status, high) = server
        .capture(&json!({
            "email": "lucia.martin@cliente.es",
            "first_name": "Lucía",
            "last_name": "Martín",
            "phone": "+34699111222",
            "company": "Cliente SA",
            "message": "Queremos conocer el producto",
            "utm_campaign": "summer_2024",
            "utm_source": "google",
            "utm_medium": "organic",
            "landing_page": "https://tuweb.com/landing",
            "source": "organic",
        }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{high}");
    assert_eq!(high["priority"], "high", "{high}");
    let lucia = high["lead_ext_id"].as_str().expect("id").to_owned();
    for stage in ["contacted", "qualified"] {
        let answer = api_raw(
            &server,
            Method::PUT,
            &format!("/api/leads/{lucia}/stage"),
            &format!(r#"{{"stage": "{stage}"}}"#),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.json()["stage"], stage);
    }

    // PATCH the deal value, as the seed's list example shows it.
    let answer = api_raw(
        &server,
        Method::PATCH,
        &format!("/api/leads/{lucia}"),
        r#"{"estimated_value": 50000.00, "currency": "EUR"}"#,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let patched = answer.json();
    assert_eq!(patched["estimated_value"], 50000.0, "{patched}");
    assert_eq!(patched["currency"], "EUR", "{patched}");

    // GET /api/leads?stage=qualified&priority=high&limit=50
    let (status, list) = server
        .api(
            Method::GET,
            "/api/leads?stage=qualified&priority=high&limit=50",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["success"], true, "{list}");
    assert!(list.get("next_cursor").is_some(), "{list}");
    let leads = list["leads"].as_array().expect("leads");
    assert_eq!(list["count"], leads.len(), "{list}");
    assert_eq!(leads.len(), 1, "only Lucía is qualified and high: {list}");
    for lead in leads {
        assert_seed_fields(lead);
        assert_eq!(lead["stage"], "qualified", "{lead}");
        assert_eq!(lead["priority"], "high", "{lead}");
    }
    let listed = &leads[0];
    assert_eq!(listed["lead_ext_id"], lucia.as_str());
    assert_eq!(listed["email"], "lucia.martin@cliente.es");
    assert_eq!(listed["first_name"], "Lucía");
    assert_eq!(listed["last_name"], "Martín");
    assert!(
        listed["score"].as_u64().is_some_and(|s| s >= 70),
        "{listed}"
    );
    assert_eq!(listed["estimated_value"], 50000.0, "{listed}");
    assert_eq!(listed["probability_pct"], 20, "qualified: {listed}");
    assert!(
        [VENDEDOR, OTRA].contains(&listed["assigned_to"].as_str().unwrap_or_default()),
        "{listed}"
    );

    // GET /api/leads/{id}
    let (status, one) = server
        .api(Method::GET, &format!("/api/leads/{cliente}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_seed_fields(&one);
    assert_eq!(one["lead_ext_id"], cliente);
    assert_eq!(one["email"], "cliente@empresa.com");
    assert_eq!(one["last_name"], "Pérez");

    // PUT …/stage with the seed's body.
    let answer = api_raw(
        &server,
        Method::PUT,
        &format!("/api/leads/{cliente}/stage"),
        r#"{"stage": "contacted", "notes": "Contactado por teléfono"}"#,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let contacted = answer.json();
    assert_eq!(contacted["stage"], "contacted", "{contacted}");
    assert!(
        contacted["history"]
            .as_array()
            .is_some_and(|h| h.iter().any(|c| c["notes"] == "Contactado por teléfono")),
        "the notes are kept: {contacted}"
    );

    // PUT …/assign with the seed's body.
    let answer = api_raw(
        &server,
        Method::PUT,
        &format!("/api/leads/{cliente}/assign"),
        r#"{"assigned_to": "vendedor@empresa.com"}"#,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json()["assigned_to"], VENDEDOR);

    // GET /api/leads/statistics: the curl lead, the batch's two, Lucía.
    let (status, stats) = server.api(Method::GET, "/api/leads/statistics", None).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["success"], true, "{stats}");
    assert_eq!(stats["total"], 4, "{stats}");
    assert_eq!(stats["by_stage"]["new"], 2, "{stats}");
    assert_eq!(stats["by_stage"]["contacted"], 1, "{stats}");
    assert_eq!(stats["by_stage"]["qualified"], 1, "{stats}");

    // The dashboard's examples.
    let (status, summary) = server
        .api(Method::GET, "/api/dashboard/summary?days=30", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["success"], true, "{summary}");
    assert_eq!(summary["total"], 4, "{summary}");

    let (status, recent) = server
        .api(Method::GET, "/api/dashboard/recent-leads?limit=20", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{recent}");
    assert_eq!(recent["success"], true, "{recent}");
    assert!(recent.get("next_cursor").is_some(), "{recent}");
    let leads = recent["leads"].as_array().expect("leads");
    assert_eq!(recent["count"], leads.len(), "{recent}");
    assert_eq!(leads.len(), 4, "{recent}");
    leads.iter().for_each(assert_seed_fields);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_browser_form_gets_a_page_in_its_language_and_keeps_what_it_cannot_read() {
    let (_dir, url) = sqlite();
    // No webhook secret: unsigned forms are accepted (the server stays on
    // the loopback address `common::spawn` gives it).
    let server = Server::start_unset(&url, &[], &["WEBHOOK_SECRET_KEY"]);
    assert!(
        server.log.text().contains("captures are accepted unsigned"),
        "{}",
        server.log.text()
    );

    // email=ana@empresa.es&phone=612 345 678&country=ES, as a browser
    // encodes it.
    let answer = browser_form(
        &server,
        "email=ana%40empresa.es&phone=612+345+678&country=ES",
        "es-ES,es;q=0.9",
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    assert!(
        answer.content_type.starts_with("text/html"),
        "{}",
        answer.content_type
    );
    assert!(answer.text.contains(r#"lang="es""#), "{}", answer.text);
    assert!(answer.text.contains("Gracias"), "{}", answer.text);
    let ana = lead_by_email(&server, "ana@empresa.es").await;
    assert_eq!(ana["phone"], "+34612345678", "read in Spain: {ana}");

    // A phone that is no number: kept as written in a warning.
    let answer = browser_form(
        &server,
        "email=pepe%40empresa.es&phone=call+me+maybe",
        "es-ES,es;q=0.9",
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    assert!(answer.text.contains("Gracias"), "{}", answer.text);
    let pepe = lead_by_email(&server, "pepe@empresa.es").await;
    assert_eq!(pepe["phone"], Value::Null, "{pepe}");
    assert!(
        pepe["warnings"].as_array().is_some_and(|w| w
            .iter()
            .any(|w| w["field"] == "phone" && w["value"] == "call me maybe")),
        "{pepe}"
    );

    // An address that is no address: the page says which field, in Spanish.
    let answer = browser_form(&server, "email=not-an-email", "es").await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text
    );
    assert!(
        answer.content_type.starts_with("text/html"),
        "{}",
        answer.content_type
    );
    assert!(answer.text.contains(r#"lang="es""#), "{}", answer.text);
    assert!(
        answer.text.contains("Correo electrónico"),
        "{}",
        answer.text
    );
}
