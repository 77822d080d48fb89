//! Idempotency keys: a key reused with another payload is refused, and
//! keys are namespaced by sender, so an anonymous caller cannot claim a
//! signed sender's key and make the real lead vanish as a "replay".

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{
    BatchReply, Headers, JSON, Options, PUBLIC_ORIGIN, STANDARD_SECRET, TestApp, json_bytes,
    legacy_signature, person, standard_signature, start_time,
};

fn key(value: &str) -> Headers {
    vec![("idempotency-key", value.to_owned())]
}

/// Asserts `reply` is the 422 that names `Idempotency-Key` as reused.
fn assert_key_reused(reply: &crate::common::Reply) {
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(error.field_names(), ["Idempotency-Key"], "{}", reply.body);
    assert_eq!(error.fields[0].code, "key_reused", "{}", reply.body);
}

#[tokio::test]
async fn a_key_reused_with_another_payload_is_a_422_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let order = key("order-42");

    let first = app
        .post_lead_json_with_verified(&person("first.key@acme.io"), &order)
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let first = first.captured();
    assert_eq!(first.status, "created");
    let outbox = app.store.outbox().len();

    let other = app
        .post_lead_json_with_verified(&person("second.key@acme.io"), &order)
        .await;
    assert_key_reused(&other);
    assert_eq!(
        app.store.leads().len(),
        1,
        "the other payload stored nothing"
    );
    assert_eq!(app.store.outbox().len(), outbox, "and queued nothing");

    // The same payload again, after the resubmit window (so only the key
    // can tell), is a retry: the first lead, replayed.
    app.clock.advance(chrono::Duration::hours(1));
    let again = app
        .post_lead_json_with_verified(&person("first.key@acme.io"), &order)
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
    let again = again.captured();
    assert_eq!(again.status, "replayed");
    assert_eq!(again.lead_ext_id, first.lead_ext_id);
    assert_eq!(app.store.leads().len(), 1);
}

#[tokio::test]
async fn a_batch_item_reused_with_another_payload_is_refused_alone() {
    let app = TestApp::spawn().await;
    let import = key("import-9");
    let first = app
        .post_batch_verified(
            &[person("batch.a@acme.io"), person("batch.b@acme.io")],
            &import,
        )
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);

    // Item 0 is the same, item 1 another lead under the same key.
    let reply = app
        .post_batch_verified(
            &[person("batch.a@acme.io"), person("batch.c@acme.io")],
            &import,
        )
        .await;
    assert_eq!(reply.status, StatusCode::MULTI_STATUS, "{}", reply.body);
    let second: BatchReply = reply.json();
    assert_eq!(
        second.results[0].lead.as_ref().map(|l| l.status.as_str()),
        Some("replayed")
    );
    assert_eq!(second.results[1].status, 422, "{}", reply.body);
    let error = second.results[1].error.as_ref().expect("an error");
    assert_eq!(error.fields[0].field, "Idempotency-Key");
    assert_eq!(error.fields[0].code, "key_reused");
    assert_eq!(app.store.leads().len(), 2, "batch.c was not stored");
}

/// An anonymous public-form post with `Idempotency-Key: key`.
async fn anonymous(app: &TestApp, email: &str, key: &str) {
    let reply = app
        .post_lead_form(
            &[("email", email), ("first_name", "Mallory")],
            &[
                ("origin", PUBLIC_ORIGIN.to_owned()),
                ("idempotency-key", key.to_owned()),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert!(
        app.store
            .leads()
            .iter()
            .any(|l| l.fields.email.as_str() == email),
        "the anonymous post is stored as its own lead"
    );
}

/// A Standard Webhooks post of `lead` with `webhook-id: id`, also carrying
/// `Idempotency-Key: key` (which no signature covers).
async fn signed_standard(app: &TestApp, lead: &Value, id: &str, key: &str) -> crate::common::Reply {
    let body = json_bytes(lead);
    let mut headers = standard_signature(STANDARD_SECRET, id, start_time().timestamp(), &body);
    headers.push(("idempotency-key", key.to_owned()));
    app.post_lead_bytes(JSON, body, &headers).await
}

#[tokio::test]
async fn an_anonymous_key_cannot_suppress_a_signed_senders_lead() {
    let app = TestApp::spawn_with(Options::public_form()).await;

    // Before the signed message: the anonymous caller claims both its
    // webhook-id and the Idempotency-Key it also sends.
    anonymous(&app, "mallory1@evil-mail.com", "msg_1").await;
    anonymous(&app, "mallory2@evil-mail.com", "order-1").await;
    let lead = person("real.lead@acme.io");
    let reply = signed_standard(&app, &lead, "msg_1", "order-1").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let first = reply.captured();
    assert_eq!(first.status, "created", "the signed lead is not a replay");
    assert_eq!(first.lead_email, "real.lead@acme.io");
    assert_eq!(app.store.leads().len(), 3, "every lead is stored");

    // After it: the anonymous caller claims the next message's keys once
    // it has been stored; its posts are leads of their own, and the signed
    // sender's retry still finds its own lead.
    let other = person("second.real@acme.io");
    let reply = signed_standard(&app, &other, "msg_2", "order-2").await;
    let second = reply.captured();
    assert_eq!(second.status, "created");
    anonymous(&app, "mallory3@evil-mail.com", "msg_2").await;
    anonymous(&app, "mallory4@evil-mail.com", "order-2").await;
    let retry = signed_standard(&app, &other, "msg_2", "order-2").await;
    let retry = retry.captured();
    assert_eq!(retry.status, "replayed");
    assert_eq!(retry.lead_ext_id, second.lead_ext_id);
    assert_eq!(app.store.leads().len(), 6);
}

#[tokio::test]
async fn an_anonymous_key_cannot_suppress_a_legacy_signed_lead() {
    let app = TestApp::spawn_with(Options::public_form()).await;
    anonymous(&app, "mallory@evil-mail.com", "crm-77").await;

    let body = json_bytes(&person("legacy.real@acme.io"));
    let mut headers = legacy_signature(&body);
    headers.extend(key("crm-77"));
    let reply = app.post_lead_bytes(JSON, body, &headers).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let captured = reply.captured();
    assert_eq!(
        captured.status, "created",
        "the signed lead is not a replay"
    );
    assert_eq!(captured.lead_email, "legacy.real@acme.io");
    assert_eq!(app.store.leads().len(), 2);
}
