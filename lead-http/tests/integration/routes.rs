//! End-to-end tests of `lead_http::router` over a real TCP listener: capture
//! (JSON, forms, signatures, idempotency, batches, limits, public forms),
//! the lead API and its keys, the dashboard and the operations endpoints.

use std::collections::BTreeSet;

use crate::common::{
    BatchReply, FORM, JSON, LEGACY_SECRET, OLD_STANDARD_SECRET, Options, PUBLIC_ORIGIN, Page,
    READER, STANDARD_SECRET, TestApp, WRITE_ONLY, WRITER, form_bytes, json_bytes, legacy_signature,
    person, rep, standard_signature, start_time,
};
use chrono::Duration;
use lead_core::{Clock, EventKind, LeadExtId, OutboxKind, Stage};
use lead_http::LeadDetail;
use lead_http::signature::sign_legacy;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `person(email)` with a message long enough to pass a small body limit.
fn wordy_person(email: &str, message_len: usize) -> Value {
    let mut lead = person(email);
    lead["message"] = json!("x".repeat(message_len));
    lead
}

// ===================================================================
// Capture: JSON and forms
// ===================================================================

#[tokio::test]
async fn a_json_lead_is_accepted_scored_and_stored() {
    let app = TestApp::spawn().await;

    let reply = app
        .post_lead_json_verified(&json!({
            "email": "ana.garcia@acme.io",
            "first_name": "Ana",
            "last_name": "García",
            "company": "Acme Robotics",
            "job_title": "CTO",
            "phone": "+34 612 345 678",
            "source": "google",
        }))
        .await;

    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let captured = reply.captured();
    assert!(captured.success);
    assert_eq!(captured.status, "created");
    assert_eq!(captured.stage, "new");
    assert_eq!(captured.assigned_to, None, "no rep exists to route to");
    assert!(
        LeadExtId::parse(&captured.lead_ext_id).is_ok(),
        "{captured:?}"
    );
    assert!(captured.score <= 100, "{captured:?}");
    assert!(
        ["low", "medium", "high"].contains(&captured.priority.as_str()),
        "{captured:?}"
    );

    let leads = app.store.leads();
    assert_eq!(leads.len(), 1);
    let stored = &leads[0];
    assert_eq!(stored.ext_id.as_str(), captured.lead_ext_id);
    assert_eq!(stored.fields.email.as_str(), "ana.garcia@acme.io");
    assert_eq!(stored.fields.company.as_deref(), Some("Acme Robotics"));
    assert_eq!(stored.fields.source.as_deref(), Some("google"));
    assert_eq!(stored.score.value(), captured.score);
    assert_eq!(stored.priority.as_str(), captured.priority);
    assert!(
        captured.score > 0 && !stored.score_breakdown.is_empty(),
        "a CTO with a phone and a company scores: {:?}",
        stored.score_breakdown
    );
    assert_eq!(stored.created_at, start_time());
    assert_eq!(stored.version, 1);
}

#[tokio::test]
async fn a_urlencoded_form_with_mapped_field_names_is_accepted() {
    let app = TestApp::spawn().await;

    let reply = app
        .post_lead_form_verified(
            &[
                ("your-email", "luis@bolt.dev"),
                ("your-name", "Luis"),
                ("lname", "Pérez"),
                ("your-company", "Bolt Labs"),
                ("favourite_color", "blue"),
            ],
            &[],
        )
        .await;

    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let captured = reply.captured();
    assert_eq!(captured.status, "created");
    let stored = app.stored(&captured.lead_ext_id);
    assert_eq!(stored.fields.email.as_str(), "luis@bolt.dev");
    assert_eq!(stored.fields.first_name.as_deref(), Some("Luis"));
    assert_eq!(stored.fields.last_name.as_deref(), Some("Pérez"));
    assert_eq!(stored.fields.company.as_deref(), Some("Bolt Labs"));
    assert_eq!(stored.fields.metadata["favourite_color"], "blue");
}

#[tokio::test]
async fn a_lead_with_a_known_email_is_merged_into_the_first_lead() {
    let app = TestApp::spawn().await;
    let first = app
        .create_lead(&json!({"email": "marta@nube.es", "first_name": "Marta"}))
        .await;

    let reply = app
        .post_lead_json_verified(&json!({"email": "Marta@Nube.es", "company": "Nube Systems"}))
        .await;

    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let second = reply.captured();
    assert_eq!(second.status, "merged");
    assert_eq!(second.lead_ext_id, first.lead_ext_id);
    let live = app.live_leads();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].fields.first_name.as_deref(), Some("Marta"));
    assert_eq!(live[0].fields.company.as_deref(), Some("Nube Systems"));
}

// ===================================================================
// Capture: legacy signature
// ===================================================================

#[tokio::test]
async fn a_legacy_signature_over_the_raw_body_is_accepted() {
    let app = TestApp::spawn_with(Options::signed()).await;

    let reply = app.post_lead_json_signed(&person("signed@acme.io")).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(reply.captured().status, "created");

    // A signed form works the same way: the signature covers the raw bytes.
    let form = form_bytes(&[("email", "form.signed@acme.io"), ("fname", "Eva")]);
    let headers = legacy_signature(&form);
    let reply = app.post_lead_bytes(FORM, form, &headers).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);

    // GitHub-style `sha256=` prefix.
    let body = json_bytes(&person("prefixed@acme.io"));
    let headers = vec![(
        "x-webhook-signature",
        format!("sha256={}", sign_legacy(LEGACY_SECRET, &body)),
    )];
    let reply = app.post_lead_bytes(JSON, body, &headers).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);

    assert_eq!(app.store.leads().len(), 3);
}

#[tokio::test]
async fn a_wrong_legacy_signature_is_refused_with_bad_signature() {
    let app = TestApp::spawn_with(Options::signed()).await;
    let body = json_bytes(&person("forged@acme.io"));

    // Signed with another secret.
    let headers = vec![("x-webhook-signature", sign_legacy("not-the-secret", &body))];
    let reply = app.post_lead_bytes(JSON, body.clone(), &headers).await;
    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");

    // The signature of another body (the body was changed on the way).
    let headers = legacy_signature(&json_bytes(&person("original@acme.io")));
    let reply = app.post_lead_bytes(JSON, body.clone(), &headers).await;
    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");

    // Not even hex.
    let headers = vec![("x-webhook-signature", "not-hex".to_owned())];
    let reply = app.post_lead_bytes(JSON, body, &headers).await;
    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");

    assert!(app.store.leads().is_empty());
}

#[tokio::test]
async fn an_unsigned_capture_is_refused_when_keys_are_configured() {
    let app = TestApp::spawn_with(Options::signed()).await;

    let reply = app.post_lead_json(&person("unsigned@acme.io")).await;
    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");

    let reply = app
        .post_lead_form(&[("email", "unsigned.form@acme.io")], &[])
        .await;
    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");

    assert!(app.store.leads().is_empty());
}

// ===================================================================
// Capture: Standard Webhooks
// ===================================================================

#[tokio::test]
async fn a_standard_webhook_signed_with_the_current_key_is_accepted() {
    let app = TestApp::spawn_with(Options::signed()).await;
    let body = json_bytes(&person("standard@acme.io"));
    let headers = standard_signature(
        STANDARD_SECRET,
        "msg_current",
        start_time().timestamp(),
        &body,
    );

    let reply = app.post_lead_bytes(JSON, body, &headers).await;

    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let captured = reply.captured();
    assert_eq!(captured.status, "created");
    assert_eq!(
        app.stored(&captured.lead_ext_id).fields.email.as_str(),
        "standard@acme.io"
    );
}

#[tokio::test]
async fn a_standard_webhook_with_a_wrong_signature_is_refused() {
    let app = TestApp::spawn_with(Options::signed()).await;
    let now = start_time().timestamp();
    let body = json_bytes(&person("forged.standard@acme.io"));

    // Signed with a key this app does not know.
    let headers = standard_signature(OLD_STANDARD_SECRET, "msg_forged", now, &body);
    let reply = app.post_lead_bytes(JSON, body.clone(), &headers).await;
    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");

    // Signed for another message id (the id is part of the signed content).
    let mut headers = standard_signature(STANDARD_SECRET, "msg_original", now, &body);
    headers[0].1 = "msg_other".to_owned();
    let reply = app.post_lead_bytes(JSON, body.clone(), &headers).await;
    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");

    // Signed over another body.
    let other = json_bytes(&person("original.standard@acme.io"));
    let headers = standard_signature(STANDARD_SECRET, "msg_body", now, &other);
    let reply = app.post_lead_bytes(JSON, body.clone(), &headers).await;
    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");

    // Garbage signature.
    let mut headers = standard_signature(STANDARD_SECRET, "msg_garbage", now, &body);
    headers[2].1 = "v1,dawfeoifkpqwoekfpqoekf".to_owned();
    let reply = app.post_lead_bytes(JSON, body, &headers).await;
    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");

    assert!(app.store.leads().is_empty());
}

#[tokio::test]
async fn a_standard_webhook_older_than_five_minutes_is_refused() {
    let app = TestApp::spawn_with(Options::signed()).await;
    let now = start_time().timestamp();
    let body = json_bytes(&person("stale@acme.io"));

    let stale = standard_signature(STANDARD_SECRET, "msg_stale", now - 301, &body);
    let reply = app.post_lead_bytes(JSON, body.clone(), &stale).await;
    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");

    let future = standard_signature(STANDARD_SECRET, "msg_future", now + 301, &body);
    let reply = app.post_lead_bytes(JSON, body.clone(), &future).await;
    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");
    assert!(app.store.leads().is_empty());

    // Within the tolerance the same message is fine.
    let late = standard_signature(STANDARD_SECRET, "msg_late", now - 299, &body);
    let reply = app.post_lead_bytes(JSON, body, &late).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(app.store.leads().len(), 1);
}

#[tokio::test]
async fn a_standard_webhook_missing_its_timestamp_is_refused() {
    let app = TestApp::spawn_with(Options::signed()).await;
    let body = json_bytes(&person("no.timestamp@acme.io"));
    let headers: Vec<_> = standard_signature(
        STANDARD_SECRET,
        "msg_no_ts",
        start_time().timestamp(),
        &body,
    )
    .into_iter()
    .filter(|(name, _)| *name != "webhook-timestamp")
    .collect();

    let reply = app.post_lead_bytes(JSON, body, &headers).await;

    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");
    assert!(app.store.leads().is_empty());
}

#[tokio::test]
async fn a_replayed_standard_webhook_answers_with_the_first_lead() {
    let app = TestApp::spawn_with(Options::signed()).await;
    let body = json_bytes(&person("replay@acme.io"));
    let headers = standard_signature(
        STANDARD_SECRET,
        "msg_replay",
        start_time().timestamp(),
        &body,
    );

    let first = app.post_lead_bytes(JSON, body.clone(), &headers).await;
    let second = app.post_lead_bytes(JSON, body.clone(), &headers).await;

    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(second.status, StatusCode::ACCEPTED, "{}", second.body);
    let (first, second) = (first.captured(), second.captured());
    assert_eq!(first.status, "created");
    assert_eq!(second.status, "replayed");
    assert_eq!(second.lead_ext_id, first.lead_ext_id);
    assert_eq!(app.store.leads().len(), 1);
    assert_eq!(
        app.stored(&first.lead_ext_id).version,
        1,
        "nothing rewritten"
    );

    // Another message reusing the id is refused, naming the header, and
    // stores nothing.
    let other = json_bytes(&person("same.id@acme.io"));
    let headers = standard_signature(
        STANDARD_SECRET,
        "msg_replay",
        start_time().timestamp(),
        &other,
    );
    let reply = app.post_lead_bytes(JSON, other, &headers).await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(error.field_names(), ["webhook-id"], "{}", reply.body);
    assert_eq!(error.fields[0].code, "key_reused");
    assert_eq!(app.store.leads().len(), 1);

    // Once the timestamp is out of tolerance the replay is refused outright.
    app.clock.advance(Duration::minutes(6));
    let headers = standard_signature(
        STANDARD_SECRET,
        "msg_replay",
        start_time().timestamp(),
        &body,
    );
    let reply = app.post_lead_bytes(JSON, body, &headers).await;
    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");
    assert_eq!(app.store.leads().len(), 1);
}

#[tokio::test]
async fn a_standard_webhook_signed_with_the_rotated_out_key_is_still_accepted() {
    let app = TestApp::spawn_with(Options::rotating()).await;
    let now = start_time().timestamp();

    let old = json_bytes(&person("old.key@acme.io"));
    let headers = standard_signature(OLD_STANDARD_SECRET, "msg_old_key", now, &old);
    let reply = app.post_lead_bytes(JSON, old, &headers).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(reply.captured().status, "created");

    let new = json_bytes(&person("new.key@acme.io"));
    let headers = standard_signature(STANDARD_SECRET, "msg_new_key", now, &new);
    let reply = app.post_lead_bytes(JSON, new, &headers).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);

    // A key that is neither is still refused.
    let body = json_bytes(&person("unknown.key@acme.io"));
    let headers = standard_signature(
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAA",
        "msg_unknown_key",
        now,
        &body,
    );
    let reply = app.post_lead_bytes(JSON, body, &headers).await;
    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");

    assert_eq!(app.store.leads().len(), 2);
}

// ===================================================================
// Capture: double submits
// ===================================================================

#[tokio::test]
async fn the_same_json_posted_twice_makes_one_lead() {
    let app = TestApp::spawn().await;
    let lead = person("double@acme.io");

    let first = app.post_lead_json_verified(&lead).await;
    let second = app.post_lead_json_verified(&lead).await;

    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(second.status, StatusCode::ACCEPTED, "{}", second.body);
    let (first, second) = (first.captured(), second.captured());
    assert_eq!(first.status, "created");
    assert_eq!(second.status, "replayed");
    assert_eq!(second.lead_ext_id, first.lead_ext_id);
    assert_eq!(app.store.leads().len(), 1);
    assert_eq!(
        app.stored(&first.lead_ext_id).version,
        1,
        "nothing rewritten"
    );
}

#[tokio::test]
async fn the_same_idempotency_key_twice_makes_one_lead() {
    let app = TestApp::spawn().await;
    let key = vec![("idempotency-key", "order-42".to_owned())];

    // The same request twice, after the 10-minute resubmit window: only the
    // key makes the second a repeat (another payload under the key is a
    // 422: `idempotency::a_key_reused_with_another_payload_is_a_422_and_stores_nothing`).
    let first = app
        .post_lead_json_with_verified(&person("first.key@acme.io"), &key)
        .await;
    app.clock.advance(chrono::Duration::hours(1));
    let second = app
        .post_lead_json_with_verified(&person("first.key@acme.io"), &key)
        .await;

    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(second.status, StatusCode::ACCEPTED, "{}", second.body);
    let (first, second) = (first.captured(), second.captured());
    assert_eq!(first.status, "created");
    assert_eq!(second.status, "replayed");
    assert_eq!(second.lead_ext_id, first.lead_ext_id);
    assert_eq!(app.store.leads().len(), 1);

    // Another key is another capture.
    let other = vec![("idempotency-key", "order-43".to_owned())];
    let third = app
        .post_lead_json_with_verified(&person("second.key@acme.io"), &other)
        .await;
    assert_eq!(third.status, StatusCode::ACCEPTED, "{}", third.body);
    assert_eq!(third.captured().status, "created");
    assert_eq!(app.store.leads().len(), 2);
}

#[tokio::test]
async fn an_overlong_or_empty_idempotency_key_is_malformed() {
    let app = TestApp::spawn().await;

    let long = vec![("idempotency-key", "k".repeat(256))];
    let reply = app
        .post_lead_json_with(&person("long.key@acme.io"), &long)
        .await;
    reply.error(StatusCode::BAD_REQUEST, "malformed");

    let empty = vec![("idempotency-key", String::new())];
    let reply = app
        .post_lead_json_with(&person("empty.key@acme.io"), &empty)
        .await;
    reply.error(StatusCode::BAD_REQUEST, "malformed");

    assert!(app.store.leads().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_double_submits_make_one_lead() {
    let app = TestApp::spawn().await;
    let lead = person("racing@acme.io");

    let (a, b, c, d) = tokio::join!(
        app.post_lead_json_verified(&lead),
        app.post_lead_json_verified(&lead),
        app.post_lead_json_verified(&lead),
        app.post_lead_json_verified(&lead),
    );

    let answers: Vec<_> = [a, b, c, d]
        .into_iter()
        .map(|reply| {
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
            reply.captured()
        })
        .collect();
    let ids: BTreeSet<_> = answers.iter().map(|a| a.lead_ext_id.clone()).collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    let created = answers.iter().filter(|a| a.status == "created").count();
    assert_eq!(created, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|a| a.status == "created" || a.status == "replayed"),
        "{answers:?}"
    );
    assert_eq!(app.store.leads().len(), 1);
}

#[tokio::test]
async fn a_resubmit_after_the_window_is_merged_into_the_same_lead() {
    let app = TestApp::spawn().await;
    let lead = person("later@acme.io");
    let first = app.create_lead(&lead).await;

    app.clock.advance(Duration::minutes(11));
    let reply = app.post_lead_json_verified(&lead).await;

    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let second = reply.captured();
    assert_eq!(second.status, "merged");
    assert_eq!(second.lead_ext_id, first.lead_ext_id);
    assert_eq!(app.live_leads().len(), 1);
}

// ===================================================================
// Capture: batches
// ===================================================================

#[tokio::test]
async fn a_batch_with_good_and_bad_leads_answers_207_with_per_item_results() {
    let app = TestApp::spawn().await;

    let reply = app
        .post_batch_verified(
            &[
                person("batch.one@acme.io"),
                json!({"email": "not-an-email", "first_name": "Bad"}),
                json!(42),
                person("batch.two@acme.io"),
            ],
            &[],
        )
        .await;

    assert_eq!(reply.status, StatusCode::MULTI_STATUS, "{}", reply.body);
    let batch: BatchReply = reply.json();
    assert_eq!(batch.accepted, 2);
    assert_eq!(batch.rejected, 2);
    let indexes: Vec<_> = batch.results.iter().map(|r| r.index).collect();
    assert_eq!(indexes, [0, 1, 2, 3]);
    let statuses: Vec<_> = batch.results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [202, 422, 400, 202]);

    let bad = batch.results[1]
        .error
        .as_ref()
        .expect("an error for item 1");
    assert_eq!(bad.error, "invalid");
    assert!(bad.field_names().contains(&"email"), "{bad:?}");
    assert!(batch.results[1].lead.is_none());
    let not_object = batch.results[2]
        .error
        .as_ref()
        .expect("an error for item 2");
    assert_eq!(not_object.error, "malformed");

    let mut stored_ids = BTreeSet::new();
    for index in [0, 3] {
        let item = &batch.results[index];
        assert!(item.error.is_none(), "{item:?}");
        let lead = item.lead.as_ref().expect("a lead for a stored item");
        assert_eq!(lead.status, "created");
        stored_ids.insert(lead.lead_ext_id.clone());
    }
    let in_store: BTreeSet<_> = app
        .store
        .leads()
        .iter()
        .map(|l| l.ext_id.to_string())
        .collect();
    assert_eq!(in_store, stored_ids);
}

#[tokio::test]
async fn a_batch_of_only_good_leads_answers_202_and_only_bad_leads_the_first_failure() {
    let app = TestApp::spawn().await;

    let reply = app
        .post_batch(&[person("good.a@acme.io"), person("good.b@acme.io")], &[])
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let batch: BatchReply = reply.json();
    assert_eq!((batch.accepted, batch.rejected), (2, 0));

    let reply = app
        .post_batch(
            &[json!({"email": "nope"}), json!({"first_name": "NoMail"})],
            &[],
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    let batch: BatchReply = reply.json();
    assert_eq!((batch.accepted, batch.rejected), (0, 2));
    let missing = batch.results[1].error.as_ref().expect("an error");
    assert!(
        missing
            .fields
            .iter()
            .any(|f| f.field == "email" && f.code == "required"),
        "{missing:?}"
    );

    assert_eq!(app.store.leads().len(), 2);
}

#[tokio::test]
async fn a_batch_over_max_batch_items_is_refused_with_422() {
    let app =
        TestApp::spawn_with(Options::default().with_settings(|s| s.max_batch_items = 3)).await;
    let leads: Vec<_> = (0..4)
        .map(|i| person(&format!("many{i}@acme.io")))
        .collect();

    let reply = app.post_batch(&leads, &[]).await;

    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(error.field_names(), ["leads"]);
    assert!(app.store.leads().is_empty());

    // At the limit it is fine.
    let reply = app.post_batch(&leads[..3], &[]).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(app.store.leads().len(), 3);
}

#[tokio::test]
async fn a_batch_body_over_max_batch_bytes_is_refused_with_413() {
    let app =
        TestApp::spawn_with(Options::default().with_settings(|s| s.max_batch_bytes = 1024)).await;
    let leads = [
        wordy_person("big.a@acme.io", 600),
        wordy_person("big.b@acme.io", 600),
    ];

    let reply = app.post_batch(&leads, &[]).await;

    reply.error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    assert!(app.store.leads().is_empty());

    let reply = app.post_batch(&leads[..1], &[]).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
}

#[tokio::test]
async fn an_empty_or_shapeless_batch_is_refused() {
    let app = TestApp::spawn().await;

    let reply = app.post_batch(&[], &[]).await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(error.field_names(), ["leads"]);

    let reply = app
        .post_batch_bytes(JSON, json_bytes(&person("not.a.batch@acme.io")), &[])
        .await;
    reply.error(StatusCode::BAD_REQUEST, "malformed");

    let reply = app
        .post_batch_bytes(FORM, form_bytes(&[("email", "form.batch@acme.io")]), &[])
        .await;
    reply.error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");

    assert!(app.store.leads().is_empty());
}

#[tokio::test]
async fn a_batch_must_be_signed_when_keys_are_configured() {
    let app = TestApp::spawn_with(Options::signed()).await;
    let body = json_bytes(&json!({"leads": [person("batch.signed@acme.io")]}));

    let reply = app.post_batch_bytes(JSON, body.clone(), &[]).await;
    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");
    assert!(app.store.leads().is_empty());

    let headers = legacy_signature(&body);
    let reply = app.post_batch_bytes(JSON, body, &headers).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(app.store.leads().len(), 1);
}

#[tokio::test]
async fn a_batch_repeated_with_the_same_idempotency_key_stores_nothing_new() {
    let app = TestApp::spawn().await;
    let key = vec![("idempotency-key", "import-7".to_owned())];
    let leads = [person("import.a@acme.io"), person("import.b@acme.io")];

    let first: BatchReply = app.post_batch_verified(&leads, &key).await.json();
    let reply = app.post_batch_verified(&leads, &key).await;

    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let second: BatchReply = reply.json();
    for (a, b) in first.results.iter().zip(&second.results) {
        let (a, b) = (
            a.lead.as_ref().expect("stored"),
            b.lead.as_ref().expect("replayed"),
        );
        assert_eq!(a.status, "created");
        assert_eq!(b.status, "replayed");
        assert_eq!(a.lead_ext_id, b.lead_ext_id);
    }
    assert_ne!(
        first.results[0].lead.as_ref().map(|l| &l.lead_ext_id),
        first.results[1].lead.as_ref().map(|l| &l.lead_ext_id),
        "each item has its own key"
    );
    assert_eq!(app.store.leads().len(), 2);
}

// ===================================================================
// Capture: media types, bodies and validation
// ===================================================================

#[tokio::test]
async fn a_text_plain_body_is_refused_with_415() {
    let app = TestApp::spawn().await;

    let reply = app
        .post_lead_bytes("text/plain", b"email=plain@acme.io".to_vec(), &[])
        .await;
    reply.error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");

    let reply = app
        .send(
            app.client
                .post(format!("http://{}/webhook/lead", app.addr))
                .body(json_bytes(&person("no.type@acme.io"))),
        )
        .await;
    reply.error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");

    assert!(app.store.leads().is_empty());

    // `application/json; charset=utf-8` and `+json` types are JSON.
    let reply = app
        .post_lead_bytes(
            "application/json; charset=utf-8",
            json_bytes(&person("charset@acme.io")),
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let reply = app
        .post_lead_bytes(
            "application/vnd.lead+json",
            json_bytes(&person("vendor@acme.io")),
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
}

#[tokio::test]
async fn broken_json_is_refused_with_400_malformed() {
    let app = TestApp::spawn().await;

    let reply = app
        .post_lead_bytes(JSON, br#"{"email": "broken@acme.io""#.to_vec(), &[])
        .await;
    reply.error(StatusCode::BAD_REQUEST, "malformed");

    let reply = app
        .post_lead_json(&json!([{"email": "array@acme.io"}]))
        .await;
    reply.error(StatusCode::BAD_REQUEST, "malformed");

    assert!(app.store.leads().is_empty());
}

#[tokio::test]
async fn a_bad_email_is_refused_with_422_naming_the_field() {
    let app = TestApp::spawn().await;

    let reply = app
        .post_lead_json(&json!({"email": "ana-at-acme", "first_name": "Ana"}))
        .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert!(
        error
            .fields
            .iter()
            .any(|f| f.field == "email" && f.code == "invalid_email"),
        "{error:?}"
    );

    let reply = app.post_lead_json(&json!({"first_name": "Ana"})).await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert!(
        error
            .fields
            .iter()
            .any(|f| f.field == "email" && f.code == "required"),
        "{error:?}"
    );

    assert!(app.store.leads().is_empty());
}

#[tokio::test]
async fn a_body_over_max_lead_bytes_is_refused_with_413() {
    let app =
        TestApp::spawn_with(Options::default().with_settings(|s| s.max_lead_bytes = 512)).await;

    let reply = app
        .post_lead_json(&wordy_person("too.big@acme.io", 1000))
        .await;
    reply.error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    assert!(app.store.leads().is_empty());

    let reply = app.post_lead_json(&wordy_person("fits@acme.io", 100)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(app.store.leads().len(), 1);
}

// ===================================================================
// Capture: public forms
// ===================================================================

fn from_origin(origin: &str) -> Vec<(&'static str, String)> {
    vec![("origin", origin.to_owned())]
}

#[tokio::test]
async fn an_unsigned_form_from_a_public_origin_is_accepted() {
    let app = TestApp::spawn_with(Options::public_form()).await;

    let reply = app
        .post_lead_form(
            &[("your-email", "visitor@acme.io"), ("your-name", "Vera")],
            &from_origin(PUBLIC_ORIGIN),
        )
        .await;

    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({"success": true, "message": "Lead received and being processed", "warnings": []}),
        "an anonymous answer"
    );
    let stored = app.stored_by_email("visitor@acme.io");
    assert_eq!(stored.fields.first_name.as_deref(), Some("Vera"));
}

#[tokio::test]
async fn a_public_form_does_not_tell_a_visitor_about_a_known_address() {
    let app = TestApp::spawn_with(Options::public_form()).await;
    let form = [("email", "known@acme.io"), ("company", "Acme Robotics")];
    let first = app.post_lead_form(&form, &from_origin(PUBLIC_ORIGIN)).await;
    let second = app.post_lead_form(&form, &from_origin(PUBLIC_ORIGIN)).await;

    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(
        (first.status, &first.body),
        (second.status, &second.body),
        "a new and a known address get the same answer"
    );
    assert_eq!(app.live_leads().len(), 1, "the second post was merged");
}

#[tokio::test]
async fn an_unsigned_form_from_a_public_origin_is_redirected_to_its_thanks_page() {
    let app = TestApp::spawn_with(Options::public_form()).await;

    let reply = app
        .post_lead_form(
            &[
                ("email", "thanks@acme.io"),
                ("_redirect", "https://example.com/thanks"),
            ],
            &from_origin(PUBLIC_ORIGIN),
        )
        .await;

    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.header("location"), Some("https://example.com/thanks"));
    let stored = app.stored_by_email("thanks@acme.io");
    assert!(
        !stored.fields.metadata.contains_key("_redirect"),
        "{:?}",
        stored.fields.metadata
    );
    assert_eq!(app.store.leads().len(), 1);
}

#[tokio::test]
async fn an_unsigned_form_from_another_origin_is_refused() {
    let app = TestApp::spawn_with(Options::public_form()).await;

    for origin in [
        "https://evil.example",
        "https://example.com.evil.example",
        "http://example.com",
    ] {
        let reply = app
            .post_lead_form(&[("email", "spoofed@acme.io")], &from_origin(origin))
            .await;
        reply.error(StatusCode::UNAUTHORIZED, "bad_signature");
    }
    assert!(app.store.leads().is_empty());
}

#[tokio::test]
async fn a_referer_on_a_public_origin_lets_a_form_through() {
    let app = TestApp::spawn_with(Options::public_form()).await;

    let lookalike = vec![(
        "referer",
        "https://example.com.evil.example/contact".to_owned(),
    )];
    let reply = app
        .post_lead_form(&[("email", "lookalike@acme.io")], &lookalike)
        .await;
    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");
    assert!(app.store.leads().is_empty());

    let referer = vec![("referer", "https://example.com/contact?x=1".to_owned())];
    let reply = app
        .post_lead_form(&[("email", "referred@acme.io")], &referer)
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(app.store.leads().len(), 1);
}

#[tokio::test]
async fn a_public_origin_does_not_excuse_a_wrong_signature() {
    let app = TestApp::spawn_with(Options::public_form()).await;
    let mut headers = from_origin(PUBLIC_ORIGIN);
    headers.push(("x-webhook-signature", sign_legacy("guess", b"anything")));

    let reply = app
        .post_lead_form(&[("email", "wrongsig@acme.io")], &headers)
        .await;

    reply.error(StatusCode::UNAUTHORIZED, "bad_signature");
    assert!(app.store.leads().is_empty());
}

#[tokio::test]
async fn a_filled_honeypot_is_answered_like_a_stored_form_and_stores_nothing() {
    let app = TestApp::spawn_with(Options::public_form()).await;

    // The answer a real visitor gets.
    let real = app
        .post_lead_form(&[("email", "human@acme.io")], &from_origin(PUBLIC_ORIGIN))
        .await;
    assert_eq!(real.status, StatusCode::ACCEPTED, "{}", real.body);
    assert_eq!(app.store.leads().len(), 1);

    // A bot filling the honeypot gets the same answer, nothing named.
    let bot = app
        .post_lead_form(
            &[("email", "bot@acme.io"), ("_hp", "http://spam.example")],
            &from_origin(PUBLIC_ORIGIN),
        )
        .await;
    assert_eq!(bot.status, StatusCode::ACCEPTED, "{}", bot.body);
    assert_eq!(bot.body, real.body);
    assert_eq!(
        bot.body,
        json!({"success": true, "message": "Lead received and being processed", "warnings": []})
    );
    assert_eq!(bot.header("content-type"), real.header("content-type"));
    assert!(!bot.body.to_string().contains("_hp"), "{}", bot.body);
    assert_eq!(app.store.leads().len(), 1, "the bot's post is not stored");

    // Left empty, as people leave it, it is dropped.
    let reply = app
        .post_lead_form(
            &[("email", "human2@acme.io"), ("_hp", "")],
            &from_origin(PUBLIC_ORIGIN),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let stored = app.stored_by_email("human2@acme.io");
    assert!(!stored.fields.metadata.contains_key("_hp"));
}

#[tokio::test]
async fn a_filled_honeypot_gets_the_redirect_or_the_thank_you_page_a_person_gets() {
    let app = TestApp::spawn_with(Options::public_form()).await;
    let thanks = format!("{PUBLIC_ORIGIN}/thanks");

    let reply = app
        .post_lead_form(
            &[
                ("email", "bot@acme.io"),
                ("_hp", "x"),
                ("_redirect", thanks.as_str()),
            ],
            &from_origin(PUBLIC_ORIGIN),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.header("location"), Some(thanks.as_str()));

    let mut browser = from_origin(PUBLIC_ORIGIN);
    browser.push(("accept", "text/html,application/xhtml+xml".to_owned()));
    let person = app
        .post_lead_form(&[("email", "person@acme.io")], &browser)
        .await;
    let bot = app
        .post_lead_form(&[("email", "bot2@acme.io"), ("_hp", "x")], &browser)
        .await;
    assert_eq!(person.status, StatusCode::ACCEPTED, "{}", person.body);
    assert_eq!(bot.status, person.status);
    assert_eq!(bot.body, person.body, "the same thank-you page");

    let stored: Vec<String> = app
        .store
        .leads()
        .iter()
        .map(|l| l.fields.email.as_str().to_owned())
        .collect();
    assert_eq!(stored, ["person@acme.io"]);
}

#[tokio::test]
async fn a_redirect_to_a_foreign_origin_is_not_followed() {
    let app = TestApp::spawn_with(Options::public_form()).await;

    for (i, target) in [
        "https://evil.example/phish",
        "https://example.com.evil.example/thanks",
        "https://example.com@evil.example/",
        "//evil.example/",
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("redirect{i}@acme.io");
        let reply = app
            .post_lead_form(
                &[("email", email.as_str()), ("_redirect", target)],
                &from_origin(PUBLIC_ORIGIN),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::ACCEPTED,
            "{target}: {}",
            reply.body
        );
        assert_eq!(reply.header("location"), None, "{target}");
    }
    assert_eq!(app.store.leads().len(), 4);
}

#[tokio::test]
async fn a_redirect_with_non_ascii_characters_is_answered_not_dropped() {
    let app = TestApp::spawn_with(Options::public_form()).await;

    // Byte 19 (the length of `https://example.com`) falls inside `é`:
    // slicing the target there must not panic the handler.
    let reply = app
        .post_lead_form(
            &[
                ("email", "accent@acme.io"),
                ("_redirect", "https://example.coé/"),
            ],
            &from_origin(PUBLIC_ORIGIN),
        )
        .await;

    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(reply.header("location"), None);
}

#[tokio::test]
async fn a_redirect_with_a_control_character_is_not_followed() {
    let app = TestApp::spawn_with(Options::public_form()).await;

    // Starts with the public origin, but cannot be a header value.
    let reply = app
        .post_lead_form(
            &[
                ("email", "newline@acme.io"),
                ("_redirect", "https://example.com/thanks\r\nSet-Cookie: a=b"),
            ],
            &from_origin(PUBLIC_ORIGIN),
        )
        .await;

    // The lead is committed before the answer is built, so any failure
    // status here would tell the visitor a stored lead was lost.
    assert_eq!(app.store.leads().len(), 1);
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(reply.header("location"), None);
    assert_eq!(reply.header("set-cookie"), None);
    assert_eq!(reply.body["success"], true);
    assert!(reply.body.get("lead_ext_id").is_none(), "{}", reply.body);
}

// ===================================================================
// Lead API: keys and scopes
// ===================================================================

#[tokio::test]
async fn the_lead_api_refuses_requests_without_a_key() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("keyless@acme.io")).await;

    app.get_leads(None, &[])
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.get_lead(None, &lead.lead_ext_id)
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.get_statistics(None, &[])
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.get_dashboard(None, "summary", &[])
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.put_stage(None, &lead.lead_ext_id, &json!({"stage": "contacted"}))
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");

    assert_eq!(app.stored(&lead.lead_ext_id).stage, Stage::New);
}

#[tokio::test]
async fn the_lead_api_refuses_an_unknown_key() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("unknown.key.api@acme.io")).await;

    app.get_leads(Some("guessed-key"), &[])
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.put_stage(
        Some("guessed-key"),
        &lead.lead_ext_id,
        &json!({"stage": "contacted"}),
    )
    .await
    .error(StatusCode::UNAUTHORIZED, "unauthorized");
    // A known key with trailing junk is another key.
    app.get_leads(Some(&format!("{READER}x")), &[])
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    // Basic auth is not a way to present a key.
    app.get_with_headers(
        "/api/leads",
        &[("authorization", format!("Basic {READER}"))],
    )
    .await
    .error(StatusCode::UNAUTHORIZED, "unauthorized");

    assert_eq!(app.stored(&lead.lead_ext_id).stage, Stage::New);
}

#[tokio::test]
async fn a_reader_key_cannot_change_anything() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("read.only@acme.io")).await;
    let id = lead.lead_ext_id.as_str();
    app.store.upsert_rep(rep("ana@sales.com", "Ana"));

    app.put_stage(Some(READER), id, &json!({"stage": "contacted"}))
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    app.put_assign(Some(READER), id, &json!({"assigned_to": "ana@sales.com"}))
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    app.post_event(Some(READER), id, &json!({"kind": "pricing_view"}))
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    app.post_undo_merge(Some(READER), "0195a3a0-0000-7000-8000-000000000000")
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");

    let stored = app.stored(id);
    assert_eq!(stored.stage, Stage::New);
    assert_eq!(stored.assigned_to, None);
    assert!(stored.events.is_empty());
    assert_eq!(stored.version, 1);
}

#[tokio::test]
async fn a_writer_key_can_change_a_stage() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("writer@acme.io")).await;

    let reply = app
        .put_stage(
            Some(WRITER),
            &lead.lead_ext_id,
            &json!({"stage": "contacted"}),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(app.stored(&lead.lead_ext_id).stage, Stage::Contacted);
}

#[tokio::test]
async fn a_reader_key_can_read_leads_statistics_and_dashboards() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("readable@acme.io")).await;

    let reply = app.get_leads(Some(READER), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let page: Page = reply.json();
    assert_eq!(page.leads.len(), 1);
    assert_eq!(page.leads[0].lead_ext_id, lead.lead_ext_id);
    assert_eq!((page.success, page.count), (true, 1));

    let reply = app.get_lead(Some(READER), &lead.lead_ext_id).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.json::<LeadDetail>().lead.lead_ext_id,
        lead.lead_ext_id
    );

    // Ids are read case-insensitively.
    let reply = app
        .get_lead(Some(READER), &lead.lead_ext_id.to_lowercase())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    let reply = app.get_statistics(Some(READER), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["total"], 1);

    for view in [
        "summary",
        "funnel",
        "recent-leads",
        "top-performers",
        "source-performance",
    ] {
        let reply = app.get_dashboard(Some(READER), view, &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{view}: {}", reply.body);
        assert!(reply.body.is_object(), "{view}: {}", reply.body);
    }
}

#[tokio::test]
async fn a_write_only_key_cannot_read() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("write.only@acme.io")).await;

    app.get_leads(Some(WRITE_ONLY), &[])
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    app.get_lead(Some(WRITE_ONLY), &lead.lead_ext_id)
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    app.get_dashboard(Some(WRITE_ONLY), "funnel", &[])
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");

    let reply = app
        .put_stage(
            Some(WRITE_ONLY),
            &lead.lead_ext_id,
            &json!({"stage": "qualified"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn the_key_can_be_sent_as_x_api_key() {
    let app = TestApp::spawn().await;
    app.create_lead(&person("header.key@acme.io")).await;

    let reply = app
        .get_with_headers("/api/leads", &[("x-api-key", READER.to_owned())])
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json::<Page>().leads.len(), 1);
}

// ===================================================================
// Lead API: stages
// ===================================================================

#[tokio::test]
async fn a_valid_stage_change_answers_200_and_is_stored() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("stage@acme.io")).await;
    app.clock.advance(Duration::hours(2));

    let reply = app
        .put_stage(
            Some(WRITER),
            &lead.lead_ext_id,
            &json!({"stage": "contacted", "notes": "called back"}),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let answered: LeadDetail = reply.json();
    assert_eq!(answered.lead.stage, "contacted");
    assert_eq!(answered.lead.version, 2);
    let stored = app.stored(&lead.lead_ext_id);
    assert_eq!(LeadDetail::from(&stored), answered);
    assert_eq!(stored.history.len(), 1);
    assert_eq!(stored.history[0].from, Stage::New);
    assert_eq!(stored.history[0].to, Stage::Contacted);
    assert_eq!(stored.history[0].notes.as_deref(), Some("called back"));
    assert_eq!(stored.stage_changed_at, app.clock.now());
    assert_eq!(stored.last_contacted_at, Some(app.clock.now()));
}

#[tokio::test]
async fn a_forbidden_stage_transition_is_refused_with_not_allowed() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("backwards@acme.io")).await;
    let id = lead.lead_ext_id.as_str();

    // Only negotiation may become won.
    app.put_stage(Some(WRITER), id, &json!({"stage": "won"}))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "not_allowed");
    // Staying put is not a change.
    app.put_stage(Some(WRITER), id, &json!({"stage": "new"}))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "not_allowed");

    let reply = app
        .put_stage(Some(WRITER), id, &json!({"stage": "qualified"}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // Backwards between open stages.
    app.put_stage(Some(WRITER), id, &json!({"stage": "contacted"}))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "not_allowed");

    let stored = app.stored(id);
    assert_eq!(stored.stage, Stage::Qualified);
    assert_eq!(stored.history.len(), 1);
}

#[tokio::test]
async fn an_unknown_stage_name_is_refused_naming_stage() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("stage.name@acme.io")).await;

    let error = app
        .put_stage(Some(WRITER), &lead.lead_ext_id, &json!({"stage": "closed"}))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");

    assert_eq!(error.field_names(), ["stage"]);
    assert_eq!(app.stored(&lead.lead_ext_id).stage, Stage::New);
}

#[tokio::test]
async fn a_stale_expected_version_is_a_conflict() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("versions@acme.io")).await;
    let id = lead.lead_ext_id.as_str();

    let reply = app
        .put_stage(
            Some(WRITER),
            id,
            &json!({"stage": "contacted", "expected_version": 1}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json::<LeadDetail>().lead.version, 2);

    // A client that still believes in version 1.
    app.put_stage(
        Some(WRITER),
        id,
        &json!({"stage": "qualified", "expected_version": 1}),
    )
    .await
    .error(StatusCode::CONFLICT, "conflict");

    let stored = app.stored(id);
    assert_eq!(stored.stage, Stage::Contacted);
    assert_eq!(stored.version, 2);
}

#[tokio::test]
async fn a_stale_if_match_header_is_a_conflict() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("if.match@acme.io")).await;
    let id = lead.lead_ext_id.as_str();

    app.put_stage_if_match(Some(WRITER), id, &json!({"stage": "contacted"}), "\"7\"")
        .await
        .error(StatusCode::CONFLICT, "conflict");
    app.put_stage_if_match(Some(WRITER), id, &json!({"stage": "contacted"}), "banana")
        .await
        .error(StatusCode::BAD_REQUEST, "malformed");
    assert_eq!(app.stored(id).stage, Stage::New);

    let reply = app
        .put_stage_if_match(Some(WRITER), id, &json!({"stage": "contacted"}), "\"1\"")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(app.stored(id).stage, Stage::Contacted);
}

#[tokio::test]
async fn changing_the_stage_of_an_unknown_lead_is_not_found() {
    let app = TestApp::spawn().await;

    // A well-formed id nobody has.
    app.put_stage(Some(WRITER), "WEB-22222222", &json!({"stage": "contacted"}))
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    // An id that cannot exist.
    app.put_stage(Some(WRITER), "nope", &json!({"stage": "contacted"}))
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    app.get_lead(Some(READER), "WEB-22222222")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_nul_character_in_a_lead_field_is_dropped_with_a_warning_and_in_notes_refused() {
    // PostgreSQL's text columns cannot hold NUL. A lead is never refused
    // for a field that is not its identity: the character is dropped and
    // the value as written kept in a warning; stage notes (not a lead)
    // are refused naming the field.
    let app = TestApp::spawn().await;
    let reply = app
        .post_lead_json_verified(
            &json!({"email": "nul@acme.io", "first_name": "A\u{0}B", "company": "X\u{0}"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let captured = reply.captured();
    let named: Vec<(&str, &str)> = captured
        .warnings
        .iter()
        .map(|f| (f.field.as_str(), f.code.as_str()))
        .collect();
    assert_eq!(
        named,
        [
            ("first_name", "invalid_character"),
            ("company", "invalid_character")
        ]
    );
    let stored = app.stored(&captured.lead_ext_id);
    assert_eq!(stored.fields.first_name.as_deref(), Some("Ab"));
    assert_eq!(stored.fields.company.as_deref(), Some("X"));
    assert_eq!(stored.fields.warnings.len(), 2);
    let email = app
        .post_lead_json_verified(&json!({"email": "n\u{0}ul@acme.io"}))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(email.field_names(), ["email"], "the identity is refused");

    let lead = app.create_lead(&person("nul.notes@acme.io")).await;
    let reply = app
        .put_stage(
            Some(WRITER),
            &lead.lead_ext_id,
            &json!({"stage": "contacted", "notes": "called\u{0}"}),
        )
        .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(error.fields[0].field, "notes");
    assert_eq!(app.stored(&lead.lead_ext_id).stage, Stage::New);
}

#[tokio::test]
async fn a_stage_change_needs_a_json_body() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("stage.body@acme.io")).await;
    let url = format!("http://{}/api/leads/{}/stage", app.addr, lead.lead_ext_id);

    let reply = app
        .send(
            app.client
                .put(&url)
                .bearer_auth(WRITER)
                .body(r#"{"stage":"contacted"}"#),
        )
        .await;
    reply.error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");

    let reply = app
        .send(
            app.client
                .put(&url)
                .bearer_auth(WRITER)
                .header("content-type", JSON)
                .body(r#"{"stage":"#),
        )
        .await;
    reply.error(StatusCode::BAD_REQUEST, "malformed");

    assert_eq!(app.stored(&lead.lead_ext_id).stage, Stage::New);
}

// ===================================================================
// Lead API: assignment and events
// ===================================================================

#[tokio::test]
async fn a_lead_can_be_assigned_to_a_known_rep() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("assign@acme.io")).await;
    assert_eq!(lead.assigned_to, None);
    app.store.upsert_rep(rep("ana@sales.com", "Ana"));

    let reply = app
        .put_assign(
            Some(WRITER),
            &lead.lead_ext_id,
            &json!({"assigned_to": "Ana@Sales.com"}),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let answered: LeadDetail = reply.json();
    assert_eq!(answered.lead.assigned_to.as_deref(), Some("ana@sales.com"));
    assert_eq!(
        app.stored(&lead.lead_ext_id)
            .assigned_to
            .map(|r| r.to_string()),
        Some("ana@sales.com".to_owned())
    );
    assert!(
        app.store
            .outbox()
            .iter()
            .any(|e| e.kind == OutboxKind::Assigned && e.lead.as_str() == lead.lead_ext_id),
        "the CRM hears about the assignment"
    );
}

#[tokio::test]
async fn assigning_to_an_unknown_or_malformed_rep_is_refused() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("assign.bad@acme.io")).await;
    let id = lead.lead_ext_id.as_str();

    for body in [
        json!({"assigned_to": "bob@sales.com"}),
        json!({"assigned_to": "bob"}),
        json!({}),
        json!({"assigned_to": "bob@sales.com", "route": true}),
    ] {
        let error = app
            .put_assign(Some(WRITER), id, &body)
            .await
            .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
        assert_eq!(error.field_names(), ["assigned_to"], "{body}");
    }
    assert_eq!(app.stored(id).assigned_to, None);
}

#[tokio::test]
async fn routing_picks_an_available_rep_when_asked() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("route.me@acme.io")).await;
    let id = lead.lead_ext_id.as_str();

    // Nobody to route to yet.
    app.put_assign(Some(WRITER), id, &json!({"route": true}))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "not_allowed");

    app.store.upsert_rep(rep("ana@sales.com", "Ana"));
    let reply = app
        .put_assign(Some(WRITER), id, &json!({"route": true}))
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let answered: LeadDetail = reply.json();
    assert_eq!(answered.lead.assigned_to.as_deref(), Some("ana@sales.com"));
    assert!(answered.routing.is_some(), "routing explains its choice");
}

#[tokio::test]
async fn a_recorded_event_answers_201_and_raises_the_behavioral_score() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("events@acme.io")).await;
    let before = app.stored(&lead.lead_ext_id).behavioral_score;

    let reply = app
        .post_event(
            Some(WRITER),
            &lead.lead_ext_id,
            &json!({"kind": "demo_request", "properties": {"page": "/demo"}}),
        )
        .await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let answered: LeadDetail = reply.json();
    let stored = app.stored(&lead.lead_ext_id);
    assert_eq!(LeadDetail::from(&stored), answered);
    assert_eq!(stored.events.len(), 1);
    assert_eq!(stored.events[0].kind, EventKind::DemoRequest);
    assert_eq!(stored.events[0].at, app.clock.now());
    assert_eq!(stored.events[0].properties["page"], "/demo");
    assert!(
        stored.behavioral_score > before,
        "{:?} -> {:?}",
        before,
        stored.behavioral_score
    );

    // An explicit time is kept.
    let at = start_time() - Duration::days(1);
    let reply = app
        .post_event(
            Some(WRITER),
            &lead.lead_ext_id,
            &json!({"kind": "pricing_view", "at": at}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let events = app.stored(&lead.lead_ext_id).events;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].at, at, "events are kept in time order");
}

#[tokio::test]
async fn an_unknown_event_kind_or_lead_is_refused() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("bad.event@acme.io")).await;

    let error = app
        .post_event(Some(WRITER), &lead.lead_ext_id, &json!({"kind": "hug"}))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(error.field_names(), ["event_type"]);

    app.post_event(Some(WRITER), "WEB-22222222", &json!({"kind": "download"}))
        .await
        .error(StatusCode::NOT_FOUND, "not_found");

    assert!(app.stored(&lead.lead_ext_id).events.is_empty());
}

// ===================================================================
// Lead API: listing
// ===================================================================

#[tokio::test]
async fn the_lead_list_pages_through_every_lead_once_with_the_cursor() {
    let app = TestApp::spawn().await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(
            app.create_lead(&person(&format!("page{i}@acme.io")))
                .await
                .lead_ext_id,
        );
        app.clock.advance(Duration::minutes(1));
    }

    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "2")];
        if let Some(c) = cursor.as_deref() {
            query.push(("cursor", c));
        }
        let reply = app.get_leads(Some(READER), &query).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let page: Page = reply.json();
        assert!(page.leads.len() <= 2);
        pages.push(page.leads.len());
        seen.extend(page.leads.iter().map(|l| l.lead_ext_id.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages.len() <= 5, "the cursor keeps going: {pages:?}");
    }

    assert_eq!(pages, [2, 2, 1]);
    // Newest first, each once.
    let newest_first: Vec<_> = created.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
}

/// The ids `GET /api/leads?query` lists, sorted.
async fn listed_ids(app: &TestApp, query: &[(&str, &str)]) -> Vec<String> {
    let reply = app.get_leads(Some(READER), query).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let ids: Vec<String> = reply
        .json::<Page>()
        .leads
        .iter()
        .map(|l| l.lead_ext_id.clone())
        .collect();
    sorted(&ids.iter().collect::<Vec<_>>())
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| (*s).clone()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn the_lead_list_filters_by_stage_source_text_and_date() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for (email, source, company) in [
        ("f0@acme.io", "google", "Acme Robotics"),
        ("f1@bolt.dev", "referral", "Bolt Labs"),
        ("f2@acme.io", "Google", "Acme Robotics"),
        ("f3@nube.es", "web", "Nube Systems"),
    ] {
        let lead = json!({"email": email, "source": source, "company": company});
        ids.push(app.create_lead(&lead).await.lead_ext_id);
        app.clock.advance(Duration::minutes(10));
    }
    let reply = app
        .put_stage(Some(WRITER), &ids[1], &json!({"stage": "contacted"}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    assert_eq!(
        listed_ids(&app, &[("stage", "contacted")]).await,
        sorted(&[&ids[1]])
    );
    assert_eq!(
        listed_ids(&app, &[("source", "GOOGLE")]).await,
        sorted(&[&ids[0], &ids[2]])
    );
    assert_eq!(listed_ids(&app, &[("q", "nube")]).await, sorted(&[&ids[3]]));
    let from = (start_time() + Duration::minutes(15)).to_rfc3339();
    let to = (start_time() + Duration::minutes(25)).to_rfc3339();
    assert_eq!(
        listed_ids(&app, &[("created_from", &from), ("created_to", &to)]).await,
        sorted(&[&ids[2]])
    );
    assert_eq!(
        listed_ids(&app, &[("source", "google"), ("q", "f2")]).await,
        sorted(&[&ids[2]])
    );
}

#[tokio::test]
async fn bad_list_parameters_are_named_in_one_422() {
    let app = TestApp::spawn().await;

    let error = app
        .get_leads(
            Some(READER),
            &[
                ("limit", "0"),
                ("stage", "closed"),
                ("cursor", "junk"),
                ("created_from", "yesterday"),
                ("priority", "urgent"),
                // Text PostgreSQL cannot compare (a NUL) is named too, not a 500.
                ("source", "web\u{0}"),
                ("segment", "\u{0}"),
                ("q", "a\u{0}b"),
            ],
        )
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");

    let named: BTreeSet<_> = error.field_names().into_iter().collect();
    let expected: BTreeSet<_> = [
        "limit",
        "stage",
        "cursor",
        "created_from",
        "priority",
        "source",
        "segment",
        "q",
    ]
    .into_iter()
    .collect();
    assert_eq!(named, expected, "{error:?}");
}

// ===================================================================
// Merges
// ===================================================================

#[tokio::test]
async fn undoing_a_capture_merge_restores_the_first_submission() {
    let app = TestApp::spawn().await;
    let first = app
        .create_lead(&json!({"email": "undo@acme.io", "first_name": "Ana"}))
        .await;
    let before = app.stored(&first.lead_ext_id);
    let reply = app
        .post_lead_json_verified(&json!({"email": "undo@acme.io", "company": "Acme Robotics"}))
        .await;
    assert_eq!(reply.captured().status, "merged");
    assert_eq!(
        app.stored(&first.lead_ext_id).fields.company.as_deref(),
        Some("Acme Robotics")
    );
    let merge_id = app
        .store
        .outbox()
        .iter()
        .find_map(|e| {
            e.payload
                .get("merge_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .expect("the merge is in the outbox");

    let reply = app.post_undo_merge(Some(WRITER), &merge_id).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let undone: lead_http::UndoView = reply.json();
    // The lead as it was, at a newer version.
    let mut was = LeadDetail::from(&before);
    was.lead.version = undone.survivor.lead.version;
    assert_eq!(undone.survivor, was, "the lead as it was");
    assert!(undone.restored.is_none(), "{}", reply.body);
    assert_eq!(app.stored(&first.lead_ext_id).fields, before.fields);
    assert_eq!(app.live_leads().len(), 1);
}

#[tokio::test]
async fn undoing_an_unknown_merge_is_not_found() {
    let app = TestApp::spawn().await;

    app.post_undo_merge(Some(WRITER), "0195a3a0-0000-7000-8000-000000000000")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    app.post_undo_merge(Some(WRITER), "not-a-uuid")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
}

// ===================================================================
// Dashboard
// ===================================================================

#[tokio::test]
async fn the_dashboard_counts_captured_leads_stages_and_wins() {
    let app = TestApp::spawn().await;
    app.store.upsert_rep(rep("ana@sales.com", "Ana"));
    let mut ids = Vec::new();
    for (email, source) in [
        ("d0@acme.io", "google"),
        ("d1@bolt.dev", "google"),
        ("d2@nube.es", "referral"),
    ] {
        let lead = app
            .create_lead(&json!({"email": email, "source": source}))
            .await;
        assert_eq!(
            lead.assigned_to.as_deref(),
            Some("ana@sales.com"),
            "{lead:?}"
        );
        ids.push(lead.lead_ext_id);
    }
    for stage in ["negotiation", "won"] {
        let reply = app
            .put_stage(Some(WRITER), &ids[0], &json!({"stage": stage}))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    let summary = app.get_dashboard(Some(READER), "summary", &[]).await;
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.body);
    assert_eq!(summary.body["total"], 3);
    assert_eq!(summary.body["by_stage"]["new"], 2);
    assert_eq!(summary.body["by_stage"]["won"], 1);
    assert_eq!(summary.body["by_source"]["google"], 2);
    assert_eq!(summary.body["by_source"]["referral"], 1);
    assert_eq!(summary.body["unassigned"], 0);
    let statistics = app.get_statistics(Some(READER), &[("days", "30")]).await;
    assert_eq!(statistics.body, summary.body);
    assert_eq!(summary.body["success"], true);
    assert_eq!(summary.body["days"], 30);

    let funnel = app.get_dashboard(Some(READER), "funnel", &[]).await;
    assert_eq!(funnel.status, StatusCode::OK, "{}", funnel.body);
    assert_eq!(
        funnel.body["funnel"],
        json!([
            {"stage": "new", "count": 3},
            {"stage": "contacted", "count": 1},
            {"stage": "qualified", "count": 1},
            {"stage": "proposal", "count": 1},
            {"stage": "negotiation", "count": 1},
            {"stage": "won", "count": 1},
        ])
    );

    let top = app
        .get_dashboard(Some(READER), "top-performers", &[("limit", "5")])
        .await;
    assert_eq!(top.status, StatusCode::OK, "{}", top.body);
    let performers = top.body["top_performers"].as_array().expect("an array");
    assert_eq!(performers.len(), 1, "{}", top.body);
    assert_eq!(performers[0]["rep"], "ana@sales.com");
    assert_eq!(performers[0]["assigned"], 3);
    assert_eq!(performers[0]["won"], 1);

    let sources = app
        .get_dashboard(Some(READER), "source-performance", &[])
        .await;
    assert_eq!(sources.status, StatusCode::OK, "{}", sources.body);
    let sources = sources.body["source_performance"]
        .as_array()
        .expect("an array")
        .clone();
    assert_eq!(sources[0]["source"], "google");
    assert_eq!(sources[0]["leads"], 2);
    assert_eq!(sources[0]["won"], 1);
    assert_eq!(sources[1]["source"], "referral");

    let recent = app
        .get_dashboard(Some(READER), "recent-leads", &[("limit", "2")])
        .await;
    assert_eq!(recent.status, StatusCode::OK, "{}", recent.body);
    let page: Page = recent.json();
    assert_eq!(page.leads.len(), 2);
    assert!(page.next_cursor.is_some());
}

#[tokio::test]
async fn the_dashboard_window_leaves_out_older_leads_and_refuses_bad_windows() {
    let app = TestApp::spawn().await;
    app.create_lead(&person("old@acme.io")).await;
    app.clock.advance(Duration::days(10));
    app.create_lead(&person("recent@acme.io")).await;

    let week = app
        .get_dashboard(Some(READER), "summary", &[("days", "7")])
        .await;
    assert_eq!(week.status, StatusCode::OK, "{}", week.body);
    assert_eq!(week.body["total"], 1);
    let month = app.get_dashboard(Some(READER), "summary", &[]).await;
    assert_eq!(month.body["total"], 2);

    for days in ["0", "-1", "many", "3651"] {
        let error = app
            .get_dashboard(Some(READER), "summary", &[("days", days)])
            .await
            .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
        assert_eq!(error.field_names(), ["days"], "{days}");
    }
    let error = app
        .get_dashboard(Some(READER), "recent-leads", &[("limit", "201")])
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(error.field_names(), ["limit"]);
}

// ===================================================================
// Operations and outages
// ===================================================================

#[tokio::test]
async fn capture_answers_503_when_the_store_is_down_and_202_once_it_is_back() {
    let app = TestApp::spawn().await;
    let lead = person("outage@acme.io");
    app.store.set_unavailable(true);

    for _ in 0..2 {
        let reply = app.post_lead_json_verified(&lead).await;
        reply.error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
        assert_eq!(reply.header("retry-after"), Some("1"));
    }
    let reply = app
        .post_lead_form_verified(&[("email", "outage.form@acme.io")], &[])
        .await;
    reply.error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");

    app.store.set_unavailable(false);
    assert!(app.store.leads().is_empty(), "nothing was half-stored");
    let reply = app.post_lead_json_verified(&lead).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(reply.captured().status, "created");
    assert_eq!(app.store.leads().len(), 1);
}

#[tokio::test]
async fn a_batch_answers_503_when_the_store_is_down() {
    let app = TestApp::spawn().await;
    app.store.set_unavailable(true);

    let reply = app
        .post_batch(&[person("b503a@acme.io"), person("b503b@acme.io")], &[])
        .await;

    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    let batch: BatchReply = reply.json();
    assert_eq!((batch.accepted, batch.rejected), (0, 2));
    assert!(batch.results.iter().all(|r| r.status == 503), "{batch:?}");
    app.store.set_unavailable(false);
    assert!(app.store.leads().is_empty());
}

#[tokio::test]
async fn the_lead_api_answers_503_when_the_store_is_down() {
    let app = TestApp::spawn().await;
    let lead = app.create_lead(&person("api.outage@acme.io")).await;
    app.store.set_unavailable(true);

    let reply = app.get_leads(Some(READER), &[]).await;
    reply.error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert_eq!(reply.header("retry-after"), Some("1"));
    app.put_stage(
        Some(WRITER),
        &lead.lead_ext_id,
        &json!({"stage": "contacted"}),
    )
    .await
    .error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");

    app.store.set_unavailable(false);
    assert_eq!(app.stored(&lead.lead_ext_id).stage, Stage::New);
}

#[tokio::test]
async fn ready_follows_the_store_while_health_stays_up() {
    let app = TestApp::spawn().await;

    let reply = app.get_ready().await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["status"], "ready");
    let reply = app.get_health().await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["status"], "ok");

    app.store.set_unavailable(true);
    let reply = app.get_ready().await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["status"], "unavailable");
    let reply = app.get_health().await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "health does not depend on the store"
    );

    app.store.set_unavailable(false);
    assert_eq!(app.get_ready().await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_store_that_hangs_is_answered_with_the_json_503_after_the_request_timeout() {
    let app = TestApp::spawn_with(Options::default().stalling().with_settings(|s| {
        s.request_timeout = std::time::Duration::from_millis(200);
    }))
    .await;

    let reply = app.post_lead_json(&person("hanging@acme.io")).await;

    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(app.store.leads().is_empty());
    assert!(
        reply.header("retry-after").is_some(),
        "a 503 says when to retry: {:?}",
        reply.headers
    );
    let error = reply.error(StatusCode::SERVICE_UNAVAILABLE, "timeout");
    assert!(
        error.message.contains("may or may not have been stored")
            && !error.message.contains("nothing was stored"),
        "a commit handed to the writer may still complete: {}",
        error.message
    );
}

#[tokio::test]
async fn metrics_is_not_found_without_a_recorder() {
    let app = TestApp::spawn().await;

    let reply = app.get_metrics().await;

    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_public_form_exemption_covers_only_urlencoded_single_leads() {
    let app = TestApp::spawn_with(Options::public_form()).await;

    app.post_lead_json_with(&person("json@acme.io"), &from_origin(PUBLIC_ORIGIN))
        .await
        .error(StatusCode::UNAUTHORIZED, "bad_signature");
    app.post_batch(&[person("batch@acme.io")], &from_origin(PUBLIC_ORIGIN))
        .await
        .error(StatusCode::UNAUTHORIZED, "bad_signature");
    assert!(app.store.leads().is_empty(), "nothing unsigned was stored");
}

#[tokio::test]
async fn a_missing_api_key_is_answered_with_www_authenticate() {
    let app = TestApp::spawn().await;
    let reply = app.get_leads(None, &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply
            .headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer")),
        "{:?}",
        reply.headers
    );
}
