//! What sales ops run the team with: editing a lead (`PATCH`), reps,
//! routing's dry run; browser forms answered in HTML; every rejection in
//! the one error shape.

use std::collections::BTreeMap;

use lead_core::Clock;
use lead_core::RepStore;
use lead_core::query::PipelineStats;
use lead_core::{OutboxKind, Stage};
use lead_http::{DryRun, FollowUpList, FollowUpView, LeadDetail, RepList, RepView};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::common::{
    FORM, Options, PUBLIC_ORIGIN, READER, TestApp, WRITE_ONLY, WRITER, form_bytes, person, rep,
};

async fn with_reps(app: &TestApp) {
    for (email, name) in [("ana@sales.com", "Ana"), ("bob@sales.com", "Bob")] {
        app.store.upsert_rep(rep(email, name));
    }
}

// ----- PATCH /api/leads/{id} -----

#[tokio::test]
async fn pending_changes_of_an_unsigned_post_are_applied_by_patch_and_dismissed() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("pending@acme.io")).await;
    let unsigned = app
        .post_lead_json(&json!({
            "email": "pending@acme.io", "first_name": "Marta", "consent_marketing": "yes",
        }))
        .await;
    assert_eq!(unsigned.status, StatusCode::ACCEPTED, "{}", unsigned.body);
    let stored = app.stored(&lead.lead_ext_id);
    let pending = &stored.fields.metadata[lead_core::dedup::PENDING_CHANGES];
    assert_eq!(pending[0]["fields"]["first_name"], "Marta", "{pending}");
    assert_eq!(pending[0]["fields"]["consent_marketing"], true, "{pending}");
    assert_eq!(
        stored.fields.consent_marketing, None,
        "not changed by the post"
    );

    // A person checks and applies it, then dismisses the list.
    let path = format!("/api/leads/{}", lead.lead_ext_id);
    let reply = app
        .call(
            Method::PATCH,
            &path,
            Some(WRITER),
            Some(&json!({
                "first_name": "Marta",
                "consent_marketing": true,
                "dismiss_pending_changes": true,
            })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let stored = app.stored(&lead.lead_ext_id);
    assert_eq!(stored.fields.first_name.as_deref(), Some("Marta"));
    assert_eq!(stored.fields.consent_marketing, Some(true));
    assert!(
        !stored
            .fields
            .metadata
            .contains_key(lead_core::dedup::PENDING_CHANGES)
    );
    let refused = app
        .call(
            Method::PATCH,
            &path,
            Some(WRITER),
            Some(&json!({ "consent_marketing": "maybe" })),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
}

#[tokio::test]
async fn patch_sets_contact_fields_and_the_deal_value_and_rescores() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("deal@acme.io")).await;
    let path = format!("/api/leads/{}", lead.lead_ext_id);
    let outbox_before = app.store.outbox().len();
    let reply = app
        .call(
            Method::PATCH,
            &path,
            Some(WRITER),
            Some(&json!({
                "estimated_value": 50000.00,
                "currency": "eur",
                "phone": "612 345 678",
                "country": "ES",
                "expected_version": 1,
            })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let answered: LeadDetail = reply.json();
    assert_eq!(answered.lead.estimated_value, Some(50000.0));
    assert_eq!(answered.lead.currency.as_deref(), Some("EUR"));
    assert_eq!(answered.lead.phone.as_deref(), Some("+34612345678"));
    assert_eq!(answered.lead.version, 2);
    assert!(
        answered.lead.score > lead.score,
        "a phone scores: {} -> {}",
        lead.score,
        answered.lead.score
    );
    let stored = app.stored(&lead.lead_ext_id);
    assert_eq!(LeadDetail::from(&stored), answered);
    assert_eq!(
        stored
            .estimated_value
            .map(|v| v.normalize().to_string())
            .as_deref(),
        Some("50000"),
        "kept as an exact decimal"
    );
    let outbox = app.store.outbox();
    assert_eq!(
        outbox.len(),
        outbox_before + 1,
        "the change goes to the CRM"
    );
    assert_eq!(outbox.last().map(|e| e.kind), Some(OutboxKind::LeadUpdated));

    // The dashboard counts the value: the lead is new, open at 5 %.
    assert_eq!((stored.stage, stored.probability_pct), (Stage::New, 5));
    for path in ["/api/leads/statistics", "/api/dashboard/summary"] {
        let reply = app.call(Method::GET, path, Some(READER), None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(
            reply.body["pipeline_value"]["EUR"].is_string(),
            "exact decimals travel as strings: {}",
            reply.body
        );
        let stats: PipelineStats = reply.json();
        let eur = |v: i64| BTreeMap::from([("EUR".to_owned(), Decimal::from(v))]);
        assert_eq!(stats.pipeline_value, eur(50_000), "{path}");
        assert_eq!(stats.weighted_pipeline_value, eur(2_500), "{path}");
        assert_eq!(stats.won_value, BTreeMap::new(), "{path}");
    }

    // null clears a field.
    let reply = app
        .call(
            Method::PATCH,
            &path,
            Some(WRITER),
            Some(&json!({"phone": null})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(app.stored(&lead.lead_ext_id).fields.phone, None);
}

#[tokio::test]
async fn patch_refuses_bad_values_naming_each_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("bad.patch@acme.io")).await;
    let path = format!("/api/leads/{}", lead.lead_ext_id);
    for (body, fields) in [
        (
            json!({"phone": "12", "website": "not a url"}),
            vec!["website", "phone"],
        ),
        (
            json!({"estimated_value": -5, "currency": "EUR"}),
            vec!["estimated_value"],
        ),
        (json!({"estimated_value": 100}), vec!["currency"]),
        (json!({"currency": "EURO"}), vec!["currency"]),
        (json!({"favourite_colour": "red"}), vec!["favourite_colour"]),
        (json!({"first_name": 7}), vec!["first_name"]),
    ] {
        let error = app
            .call(Method::PATCH, &path, Some(WRITER), Some(&body))
            .await
            .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
        assert_eq!(error.field_names(), fields, "{body}");
    }
    assert_eq!(
        app.stored(&lead.lead_ext_id).version,
        1,
        "nothing was written"
    );
}

#[tokio::test]
async fn patch_needs_the_write_scope_a_known_lead_and_the_current_version() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("scoped.patch@acme.io")).await;
    let path = format!("/api/leads/{}", lead.lead_ext_id);
    let body = json!({"company": "Globex"});
    app.call(Method::PATCH, &path, Some(READER), Some(&body))
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    app.call(Method::PATCH, &path, None, Some(&body))
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.call(
        Method::PATCH,
        "/api/leads/WEB-ZZZZZZZZ",
        Some(WRITER),
        Some(&body),
    )
    .await
    .error(StatusCode::NOT_FOUND, "not_found");
    let stale = json!({"company": "Globex", "expected_version": 7});
    app.call(Method::PATCH, &path, Some(WRITER), Some(&stale))
        .await
        .error(StatusCode::CONFLICT, "conflict");
    assert_eq!(
        app.stored(&lead.lead_ext_id).fields.company.as_deref(),
        Some("Acme Robotics")
    );
}

// ----- reps -----

#[tokio::test]
async fn reps_are_listed_read_and_changed_never_deleted() {
    let app = TestApp::spawn().await;
    with_reps(&app).await;
    let reply = app.call(Method::GET, "/api/reps", Some(READER), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let list: RepList = reply.json();
    assert_eq!((list.success, list.count), (true, 2));
    assert_eq!(list.reps[0].rep.id.as_str(), "ana@sales.com");

    let reply = app
        .call(Method::GET, "/api/reps/bob@sales.com", Some(READER), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json::<RepView>().rep.name, "Bob");

    // Deactivated: routing skips Bob, he keeps existing.
    let reply = app
        .call(
            Method::PUT,
            "/api/reps/bob@sales.com",
            Some(WRITER),
            Some(&json!({"active": false, "daily_capacity": 5})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let bob: RepView = reply.json();
    assert!(!bob.rep.active);
    assert_eq!(bob.rep.daily_capacity, 5);
    assert_eq!(bob.rep.name, "Bob", "fields left out stay");
    for n in 0..3 {
        let lead = app.create_lead(&person(&format!("r{n}@acme.io"))).await;
        assert_eq!(lead.assigned_to.as_deref(), Some("ana@sales.com"));
    }

    // PUT /api/reps adds Carol and changes Ana; Bob stays as he is.
    let reply = app
        .call(
            Method::PUT,
            "/api/reps",
            Some(WRITER),
            Some(&json!({"reps": [
                {"id": "carol@sales.com", "name": "Carol"},
                {"id": "ana@sales.com", "name": "Ana María", "weight": 2.0},
            ]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let list: RepList = reply.json();
    assert_eq!(list.count, 3);
    let states = app.store.rep_states().await.expect("reps");
    let ana = states
        .iter()
        .find(|s| s.rep.id.as_str() == "ana@sales.com")
        .expect("ana");
    assert_eq!(ana.rep.name, "Ana María");
    assert_eq!(ana.load.open_leads, 3, "the workload is kept");
    assert!(
        states
            .iter()
            .any(|s| s.rep.id.as_str() == "bob@sales.com" && !s.rep.active)
    );
}

#[tokio::test]
async fn rep_changes_are_checked_scoped_and_need_a_known_rep() {
    let app = TestApp::spawn().await;
    with_reps(&app).await;
    for (body, field) in [
        (json!({"weight": -1.0}), "weight"),
        (json!({"conversion_rate": 1.5}), "conversion_rate"),
        (json!({"daily_capcity": 3}), "daily_capcity"),
        (json!({"id": "other@sales.com"}), "id"),
        (json!({"name": ""}), "name"),
    ] {
        refused_change_of_ana(&app, &body, field).await;
    }
    let error = app
        .call(
            Method::PUT,
            "/api/reps",
            Some(WRITER),
            Some(&json!({"reps": [{"id": "dan@sales.com", "name": "Dan"}, {"id": "not an email", "name": "X"}]})),
        )
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert!(error.field_names()[0].starts_with("reps[1]."), "{error:?}");
    assert_eq!(
        app.store.rep_states().await.expect("reps").len(),
        2,
        "nothing written"
    );

    app.call(
        Method::PUT,
        "/api/reps/ana@sales.com",
        Some(READER),
        Some(&json!({"active": false})),
    )
    .await
    .error(StatusCode::FORBIDDEN, "forbidden");
    app.call(Method::GET, "/api/reps", Some(WRITE_ONLY), None)
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    app.call(Method::GET, "/api/reps", None, None)
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    for path in ["/api/reps/nobody@sales.com", "/api/reps/not-an-email"] {
        app.call(Method::GET, path, Some(READER), None)
            .await
            .error(StatusCode::NOT_FOUND, "not_found");
        app.call(
            Method::PUT,
            path,
            Some(WRITER),
            Some(&json!({"active": false})),
        )
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    }
    let states = app.store.rep_states().await.expect("reps");
    assert!(states.iter().all(|s| s.rep.active), "nothing was changed");
}

/// `PUT /api/reps/ana@sales.com` with `body` is a 422 naming `field`.
async fn refused_change_of_ana(app: &TestApp, body: &Value, field: &str) {
    let error = app
        .call(
            Method::PUT,
            "/api/reps/ana@sales.com",
            Some(WRITER),
            Some(body),
        )
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(error.field_names(), [field], "{body}");
}

// ----- routing dry run -----

#[tokio::test]
async fn the_dry_run_says_who_would_get_a_lead_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let stored = app.create_lead(&person("before.reps@acme.io")).await;
    assert_eq!(stored.assigned_to, None);
    with_reps(&app).await;
    let loads = app.store.rep_states().await.expect("reps");

    let reply = app
        .call(
            Method::POST,
            "/api/routing/dry-run",
            Some(READER),
            Some(&json!({"lead_ext_id": stored.lead_ext_id})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let dry: DryRun = reply.json();
    assert!(dry.assigned_to.is_some(), "{dry:?}");
    assert!(!dry.summary.is_empty());
    assert!(
        dry.explanation["reps"]
            .as_array()
            .is_some_and(|r| r.len() == 2)
    );

    let reply = app
        .call(
            Method::POST,
            "/api/routing/dry-run",
            Some(READER),
            Some(&json!({"lead": {"your-email": "new@acme.io", "company": "Acme"}})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.json::<DryRun>().assigned_to.is_some());

    assert_eq!(
        app.stored(&stored.lead_ext_id).assigned_to,
        None,
        "not assigned"
    );
    assert_eq!(
        app.store.rep_states().await.expect("reps"),
        loads,
        "no workload"
    );
    assert_eq!(app.store.leads().len(), 1, "nothing stored");
}

#[tokio::test]
async fn the_dry_run_refuses_bad_requests() {
    let app = TestApp::spawn().await;
    let path = "/api/routing/dry-run";
    for (body, field) in [
        (json!({}), "lead_ext_id"),
        (json!({"lead": {"email": "nope"}}), "email"),
        (
            json!({"lead_ext_id": "WEB-AAAAAAAA", "lead": {"email": "a@b.co"}}),
            "lead_ext_id",
        ),
        (json!({"lead_id": "WEB-AAAAAAAA"}), "lead_id"),
    ] {
        let error = app
            .call(Method::POST, path, Some(READER), Some(&body))
            .await
            .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
        assert_eq!(error.field_names(), [field], "{body}");
    }
    app.call(
        Method::POST,
        path,
        Some(READER),
        Some(&json!({"lead_ext_id": "WEB-ZZZZZZZZ"})),
    )
    .await
    .error(StatusCode::NOT_FOUND, "not_found");
    app.call(
        Method::POST,
        path,
        Some(WRITE_ONLY),
        Some(&json!({"lead_ext_id": "WEB-ZZZZZZZZ"})),
    )
    .await
    .error(StatusCode::FORBIDDEN, "forbidden");
}

// ----- browser forms -----

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

async fn browser_post(
    app: &TestApp,
    fields: &[(&str, &str)],
    language: &str,
) -> (StatusCode, String, String) {
    let response = app
        .client
        .post(format!("http://{}/webhook/lead", app.addr))
        .header("content-type", FORM)
        .header("accept", BROWSER_ACCEPT)
        .header("accept-language", language)
        .header("origin", PUBLIC_ORIGIN)
        .body(form_bytes(fields))
        .send()
        .await
        .expect("answer");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, content_type, response.text().await.expect("body"))
}

#[tokio::test]
async fn a_spanish_browser_form_gets_a_spanish_page_and_its_phone_read_in_spain() {
    let app = TestApp::spawn().await;
    let (status, content_type, page) = browser_post(
        &app,
        &[
            ("email", "ana@empresa.es"),
            ("phone", "612 345 678"),
            ("country", "ES"),
        ],
        "es-ES,es;q=0.9,en;q=0.8",
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{page}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(
        page.contains("lang=\"es\"") && page.contains("Gracias"),
        "{page}"
    );
    assert_eq!(
        app.stored_by_email("ana@empresa.es")
            .fields
            .phone
            .map(|p| p.to_string())
            .as_deref(),
        Some("+34612345678")
    );

    let (status, _, page) = browser_post(&app, &[("email", "not-an-email")], "es").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("Revisa el formulario") && page.contains("Correo electrónico"),
        "{page}"
    );

    let (status, _, page) = browser_post(&app, &[("email", "bob@empresa.com")], "en-GB").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(
        page.contains("lang=\"en\"") && page.contains("Thank you"),
        "{page}"
    );
}

#[tokio::test]
async fn a_form_may_name_where_to_go_when_it_is_refused_on_its_own_origin_only() {
    let app = TestApp::spawn_with(
        Options::default().with_settings(|s| s.public_form_origins = vec![PUBLIC_ORIGIN.into()]),
    )
    .await;
    let reply = app
        .post_lead_form(
            &[
                ("email", "nope"),
                ("_error_redirect", "https://example.com/contact?x=1#form"),
            ],
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(
        reply.header("location"),
        Some("https://example.com/contact?x=1&error=invalid&fields=email#form")
    );
    // Another origin is never a redirect target.
    let reply = app
        .post_lead_form(
            &[
                ("email", "nope"),
                ("_error_redirect", "https://evil.example/x"),
            ],
            &[],
        )
        .await;
    reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(reply.header("location"), None);
}

// ----- the one error shape -----

#[tokio::test]
async fn rejections_of_the_framework_answer_in_the_error_shape() {
    let app = TestApp::spawn().await;
    app.get_leads(Some(READER), &[("limit", "1"), ("limit", "2")])
        .await
        .error(StatusCode::BAD_REQUEST, "malformed");
    app.call(Method::GET, "/api/nothing-here", Some(READER), None)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    app.call(Method::DELETE, "/api/leads", Some(WRITER), None)
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let lead = app.create_lead(&person("shape@acme.io")).await;
    let error = app
        .put_stage(
            Some(WRITER),
            &lead.lead_ext_id,
            &json!({"stage": "pondering"}),
        )
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(error.field_names(), ["stage"]);
}

#[tokio::test]
async fn recent_leads_honour_the_window() {
    let app = TestApp::spawn().await;
    app.create_lead(&person("old.recent@acme.io")).await;
    app.clock.advance(chrono::Duration::days(10));
    app.create_lead(&person("new.recent@acme.io")).await;
    let page = |days: &'static str| {
        let app = &app;
        async move {
            let reply = app
                .get_dashboard(Some(READER), "recent-leads", &[("days", days)])
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            reply.json::<crate::common::Page>().count
        }
    };
    assert_eq!(page("7").await, 1);
    assert_eq!(page("30").await, 2);
}

// ----- follow-ups -----

#[tokio::test]
async fn follow_ups_are_listed_by_rep_status_and_due_date_and_paged() {
    let app = TestApp::spawn().await;
    with_reps(&app).await;
    for n in 0..4 {
        app.create_lead(&person(&format!("task{n}@acme.io"))).await;
        app.clock.advance(chrono::Duration::hours(1));
    }
    let list = |query: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let reply = app
                .send(
                    app.client
                        .get(format!("http://{}/api/followups", app.addr))
                        .query(&query)
                        .bearer_auth(READER),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            reply.json::<FollowUpList>()
        }
    };
    let all = list(vec![]).await;
    assert_eq!((all.success, all.count), (true, 4));
    assert!(
        all.followups.windows(2).all(|w| w[0].due_at <= w[1].due_at),
        "soonest first"
    );
    let ana = list(vec![("assigned_to", "ana@sales.com".into())]).await;
    assert!(
        ana.count >= 1
            && ana
                .followups
                .iter()
                .all(|t| t.assigned_to.as_deref() == Some("ana@sales.com"))
    );
    let second = all.followups[1].due_at;
    let from_second = list(vec![("due_from", second.to_rfc3339())]).await;
    assert_eq!(from_second.count, 3);
    let lead = all.followups[0].lead_ext_id.clone();
    assert_eq!(list(vec![("lead", lead)]).await.count, 1);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "1".to_owned())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let page = list(query).await;
        seen.extend(page.followups.iter().map(|t| t.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(seen.len() <= 4, "the cursor keeps going");
    }
    assert_eq!(seen, all.followups.iter().map(|t| t.id).collect::<Vec<_>>());

    for (name, value) in [
        ("status", "finished"),
        ("limit", "0"),
        ("assigned_to", "nobody"),
        ("due_to", "soon"),
        ("cursor", "x"),
    ] {
        let error = app
            .send(
                app.client
                    .get(format!("http://{}/api/followups", app.addr))
                    .query(&[(name, value)])
                    .bearer_auth(READER),
            )
            .await
            .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
        assert_eq!(error.field_names(), [name]);
    }
    app.call(Method::GET, "/api/followups", Some(WRITE_ONLY), None)
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn a_follow_up_is_completed_or_moved_and_the_crm_hears_of_it() {
    let app = TestApp::spawn().await;
    with_reps(&app).await;
    app.create_lead(&person("call.me@acme.io")).await;
    let task = app.store.followups().remove(0);
    let path = format!("/api/followups/{}", task.id);
    let outbox_before = app.store.outbox().len();

    app.clock.advance(chrono::Duration::hours(2));
    let reply = app
        .call(
            Method::PUT,
            &path,
            Some(WRITER),
            Some(&json!({"status": "done", "notes": "Llamado, interesado"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let done: FollowUpView = reply.json();
    assert_eq!(done.status, "done");
    assert_eq!(done.completed_at, Some(app.clock.now()));
    assert_eq!(done.notes.as_deref(), Some("Llamado, interesado"));
    let stored = app.store.followups().remove(0);
    assert_eq!(FollowUpView::from(&stored), done);
    let outbox = app.store.outbox();
    assert_eq!(outbox.len(), outbox_before + 1);
    assert_eq!(
        outbox.last().map(|e| e.kind),
        Some(OutboxKind::FollowUpUpdated)
    );

    let later = task.due_at + chrono::Duration::days(3);
    let reply = app
        .call(
            Method::PUT,
            &path,
            Some(WRITER),
            Some(&json!({"status": "open", "due_at": later})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let moved: FollowUpView = reply.json();
    assert_eq!(
        (moved.status.as_str(), moved.due_at, moved.completed_at),
        ("open", later, None)
    );
}

#[tokio::test]
async fn follow_up_changes_are_checked_scoped_and_need_a_known_task() {
    let app = TestApp::spawn().await;
    app.create_lead(&person("checked.task@acme.io")).await;
    let task = app.store.followups().remove(0);
    let path = format!("/api/followups/{}", task.id);
    for (body, field) in [
        (json!({"status": "finished"}), "status"),
        (json!({"due_at": "tomorrow"}), "due_at"),
        (json!({"notes": "a\u{0}b"}), "notes"),
        (json!({"colour": "red"}), "colour"),
        (json!({}), "body"),
    ] {
        let error = app
            .call(Method::PUT, &path, Some(WRITER), Some(&body))
            .await
            .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
        assert_eq!(error.field_names(), [field], "{body}");
    }
    assert_eq!(app.store.followups()[0], task, "nothing was written");
    app.call(
        Method::PUT,
        &path,
        Some(READER),
        Some(&json!({"status": "done"})),
    )
    .await
    .error(StatusCode::FORBIDDEN, "forbidden");
    app.call(Method::PUT, &path, None, Some(&json!({"status": "done"})))
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    for unknown in ["00000000-0000-0000-0000-000000000000", "not-a-uuid"] {
        app.call(
            Method::PUT,
            &format!("/api/followups/{unknown}"),
            Some(WRITER),
            Some(&json!({"status": "done"})),
        )
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn the_policys_field_aliases_map_another_form_tools_names() {
    let options = Options {
        policy: lead_core::Policy::from_toml(
            "[field_aliases]\n\"contact-mail\" = \"email\"\n\"Nombre completo\" = \"first_name\"\n",
        )
        .expect("a valid policy"),
        ..Options::default()
    };
    let app = TestApp::spawn_with(options).await;
    let reply = app
        .post_lead_form(
            &[
                ("contact-mail", "first.named@acme.io"),
                ("Nombre completo", "Lucía"),
                ("your-email", "last.named@acme.io"),
            ],
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let stored = app.stored_by_email("last.named@acme.io");
    assert_eq!(stored.fields.first_name.as_deref(), Some("Lucía"));
    // Both names map to `email`: the last one in the form is the e-mail,
    // the other is kept in metadata under its own name.
    assert_eq!(
        stored.fields.metadata["contact-mail"],
        "first.named@acme.io"
    );
    let reply = app
        .post_lead_form(&[("contact-mail", "only.alias@acme.io")], &[])
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    app.stored_by_email("only.alias@acme.io");

    let error = lead_core::Policy::from_toml("[field_aliases]\n\"x\" = \"favourite_colour\"\n")
        .expect_err("an alias to no lead field");
    let lead_core::Error::Invalid { fields } = error else {
        panic!("{error:?}");
    };
    assert_eq!(fields[0].field, "field_aliases.x");
}

#[tokio::test]
async fn adding_reps_needs_the_write_scope() {
    let app = TestApp::spawn().await;
    let body = json!({"reps": [{"id": "dan@sales.com", "name": "Dan"}]});
    app.call(Method::PUT, "/api/reps", Some(READER), Some(&body))
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    app.call(
        Method::PUT,
        "/api/reps",
        Some(WRITER),
        Some(&json!({"reps": []})),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert!(app.store.rep_states().await.expect("reps").is_empty());
}

#[tokio::test]
async fn reassigning_a_lead_moves_its_open_follow_up_to_the_new_rep() {
    let app = TestApp::spawn().await;
    with_reps(&app).await;
    let lead = app.create_lead(&person("moving@acme.io")).await;
    let first = lead.assigned_to.clone().expect("assigned at capture");
    let other = if first == "ana@sales.com" {
        "bob@sales.com"
    } else {
        "ana@sales.com"
    };
    let reply = app
        .put_assign(
            Some(WRITER),
            &lead.lead_ext_id,
            &json!({"assigned_to": other}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let tasks = app.store.followups();
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        tasks[0].assigned_to.as_ref().map(|r| r.as_str()),
        Some(other)
    );
    assert_eq!(
        app.store.outbox().last().map(|e| e.kind),
        Some(OutboxKind::FollowUpUpdated)
    );
}

#[tokio::test]
async fn a_rep_change_merges_skills_and_names_a_badly_typed_field() {
    let app = TestApp::spawn().await;
    let mut ana = rep("ana@sales.com", "Ana");
    ana.skills.industries.insert("software".into());
    app.store.upsert_rep(ana);
    let reply = app
        .call(
            Method::PUT,
            "/api/reps/ana@sales.com",
            Some(WRITER),
            Some(&json!({"skills": {"languages": ["es"]}})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let ana: RepView = reply.json();
    assert!(ana.rep.skills.languages.contains("es"));
    assert!(
        ana.rep.skills.industries.contains("software"),
        "the other skills stay"
    );
    for (body, field) in [
        (json!({"daily_capacity": 1.5}), "daily_capacity"),
        (json!({"weight": true}), "weight"),
        (
            json!({"working_hours": {"days": ["Funday"]}}),
            "working_hours.days[0]",
        ),
    ] {
        refused_change_of_ana(&app, &body, field).await;
    }
    let error = app
        .call(
            Method::POST,
            "/api/routing/dry-run",
            Some(READER),
            Some(&json!({"lead": "WEB-AAAAAAAA"})),
        )
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(error.field_names(), ["lead"]);
}

#[tokio::test]
async fn an_edit_that_completes_bant_qualifies_the_lead() {
    let mut options = Options::default();
    options.policy.bant.auto_qualify_enabled = true;
    let app = TestApp::spawn_with(options).await;
    let lead = app
        .create_lead(&json!({
            "email": "buyer@acme.io",
            "budget": "20000 EUR",
            "message": "We need a quote",
        }))
        .await;
    assert_eq!(lead.stage, "new", "budget and need: 2 of 4");
    let reply = app
        .call(
            Method::PATCH,
            &format!("/api/leads/{}", lead.lead_ext_id),
            Some(WRITER),
            Some(&json!({"job_title": "CEO"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let detail: LeadDetail = reply.json();
    assert_eq!(detail.lead.stage, "qualified");
    assert_eq!(detail.lead.bant_score, Some(3));
    assert_eq!(
        app.store.outbox().last().map(|e| e.kind),
        Some(OutboxKind::StageChanged)
    );
}

#[tokio::test]
async fn an_api_body_over_the_limit_is_413() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("big.body@acme.io")).await;
    let huge = "x".repeat(3 * 1024 * 1024);
    app.call(
        Method::PATCH,
        &format!("/api/leads/{}", lead.lead_ext_id),
        Some(WRITER),
        Some(&json!({"company": huge})),
    )
    .await
    .error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
}
