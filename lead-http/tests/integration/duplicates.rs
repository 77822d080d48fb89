//! End-to-end tests of the duplicate review and merge routes over a real
//! listener: scan, the review list, merge and dismiss decisions, merging
//! any two leads, reading a merge and undoing it; scopes and error codes.

use crate::common::{Options, READER, TestApp, WRITER, rep};
use lead_core::{DedupConfig, DedupMode, ReviewStatus};
use lead_core::{LeadReads, RepStore};
use lead_http::{MergeView, PairPageView, PairView};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The same person under two addresses (same name, company and phone).
fn ana(email: &str) -> Value {
    json!({
        "email": email,
        "first_name": "Ana",
        "last_name": "García",
        "company": "Acme Robotics",
        "phone": "+34 611 222 333",
        "source": "web",
    })
}

fn bob() -> Value {
    json!({
        "email": "bob@other.com",
        "first_name": "Bob",
        "last_name": "Smith",
        "company": "Other Inc",
    })
}

fn review_only() -> Options {
    Options::default().with_dedup(DedupConfig {
        mode: DedupMode::Review,
        ..DedupConfig::default()
    })
}

/// An app in review mode with Ana twice and Bob, scanned once: the one
/// open pair and the two Ana lead ids (oldest first).
async fn scanned() -> (TestApp, PairView, [String; 2]) {
    let app = TestApp::spawn_with(review_only()).await;
    app.store.upsert_rep(rep("rep@sales.com", "Rep"));
    let first = app.create_lead(&ana("ana@acme.io")).await.lead_ext_id;
    app.clock.advance(chrono::Duration::minutes(5));
    let second = app
        .create_lead(&ana("ana.garcia@gmail.com"))
        .await
        .lead_ext_id;
    app.create_lead(&bob()).await;

    let reply = app
        .call(Method::POST, "/api/duplicates/scan", Some(WRITER), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["leads"], 3, "{}", reply.body);
    assert_eq!(reply.body["marked"], 1, "{}", reply.body);
    assert_eq!(reply.body["merged"], 0, "{}", reply.body);

    let reply = app
        .call(Method::GET, "/api/duplicates", Some(READER), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let mut page: PairPageView = reply.json();
    assert_eq!(page.pairs.len(), 1, "{}", reply.body);
    assert_eq!(page.next_cursor, None);
    (app, page.pairs.remove(0), [first, second])
}

#[tokio::test]
async fn a_scan_lists_the_pair_with_both_leads_for_review() {
    let (app, pair, [first, second]) = scanned().await;
    assert_eq!(pair.pair.status, ReviewStatus::Open);
    assert!(pair.pair.similarity.is_some_and(|s| s >= 0.85));
    let mut ids: Vec<String> = pair
        .lead_details
        .iter()
        .map(|l| l.lead_ext_id.to_string())
        .collect();
    ids.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(
        pair.lead_details
            .iter()
            .all(|l| l.fields.company.as_deref() == Some("Acme Robotics"))
    );

    let one = app
        .call(
            Method::GET,
            &format!("/api/duplicates/{}", pair.pair.id),
            Some(READER),
            None,
        )
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.json::<PairView>().pair, pair.pair);

    // Scanning again proposes nothing new.
    let again = app
        .call(Method::POST, "/api/duplicates/scan", Some(WRITER), None)
        .await;
    assert_eq!(again.body["marked"], 0, "{}", again.body);
    assert_eq!(again.body["skipped"], 1, "{}", again.body);
    // Pairs of one lead.
    for (lead, expected) in [(&first, 1), (&second, 1)] {
        let page = app
            .call(
                Method::GET,
                &format!("/api/duplicates?status=all&lead={lead}"),
                Some(READER),
                None,
            )
            .await
            .json::<PairPageView>();
        assert_eq!(page.pairs.len(), expected, "{lead}");
    }
    let bob = app.stored_by_email("bob@other.com").ext_id;
    let none = app
        .call(
            Method::GET,
            &format!("/api/duplicates?lead={bob}"),
            Some(READER),
            None,
        )
        .await
        .json::<PairPageView>();
    assert!(none.pairs.is_empty());
    let reply = app
        .call(Method::GET, "/api/duplicates?lead=bad", Some(READER), None)
        .await;
    assert_eq!(
        reply
            .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            .field_names(),
        ["lead"]
    );
    let merged_list = app
        .call(
            Method::GET,
            "/api/duplicates?status=merged",
            Some(READER),
            None,
        )
        .await;
    assert!(merged_list.json::<PairPageView>().pairs.is_empty());
}

#[tokio::test]
async fn merging_a_pair_then_undoing_it_restores_both_leads() {
    let (app, pair, [first, second]) = scanned().await;
    let path = format!("/api/duplicates/{}/merge", pair.pair.id);

    let reply = app.call(Method::POST, &path, Some(WRITER), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let merged: MergeView = reply.json();
    assert_eq!(
        merged.survivor.lead.lead_ext_id.as_str(),
        first,
        "the oldest survives"
    );
    assert_eq!(merged.absorbed.lead.lead_ext_id, second);
    assert_eq!(
        app.stored(&second).merged_into.map(|m| m.to_string()),
        Some(merged.survivor.lead.lead_ext_id.clone())
    );
    assert_eq!(
        merged.absorbed.lead.merged_into.as_deref(),
        Some(first.as_str()),
        "the absorbed lead's view says where it went"
    );
    assert_eq!(merged.pair.status, ReviewStatus::Merged);
    assert_eq!(merged.pair.merge_id, Some(merged.merge_id));
    assert_eq!(app.live_leads().len(), 2);
    let reps = app.store.rep_states().await.expect("reps");
    assert_eq!(
        reps[0].load.open_leads, 2,
        "the absorbed lead's place is freed"
    );

    // Deciding twice is a conflict; the merge record is readable.
    app.call(Method::POST, &path, Some(WRITER), None)
        .await
        .error(StatusCode::CONFLICT, "conflict");
    let record = app
        .call(
            Method::GET,
            &format!("/api/merges/{}", merged.merge_id),
            Some(READER),
            None,
        )
        .await;
    assert_eq!(record.status, StatusCode::OK, "{}", record.body);
    assert_eq!(record.body["absorbed_before"]["ext_id"], second.as_str());

    let undo = app
        .call(
            Method::POST,
            &format!("/api/merges/{}/undo", merged.merge_id),
            Some(WRITER),
            None,
        )
        .await;
    assert_eq!(undo.status, StatusCode::OK, "{}", undo.body);
    assert_eq!(app.live_leads().len(), 3);
    assert_eq!(app.stored(&second).merged_into, None);
    let reps = app.store.rep_states().await.expect("reps");
    assert_eq!(reps[0].load.open_leads, 3);
    let dismissed = app
        .call(
            Method::GET,
            "/api/duplicates?status=dismissed",
            Some(READER),
            None,
        )
        .await
        .json::<PairPageView>();
    assert_eq!(dismissed.pairs.len(), 1, "an unmerged pair is dismissed");
    assert_eq!(dismissed.pairs[0].pair.id, pair.pair.id);
}

#[tokio::test]
async fn dismissing_a_pair_keeps_both_leads_and_hides_it() {
    let (app, pair, [first, second]) = scanned().await;
    let reply = app
        .call(
            Method::POST,
            &format!("/api/duplicates/{}/dismiss", pair.pair.id),
            Some(WRITER),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["status"], "dismissed");
    for id in [&first, &second] {
        assert_eq!(app.stored(id).merged_into, None);
    }
    let open = app
        .call(Method::GET, "/api/duplicates", Some(READER), None)
        .await
        .json::<PairPageView>();
    assert!(open.pairs.is_empty());
    let all = app
        .call(
            Method::GET,
            "/api/duplicates?status=all",
            Some(READER),
            None,
        )
        .await
        .json::<PairPageView>();
    assert_eq!(all.pairs.len(), 1);
}

#[tokio::test]
async fn a_person_merges_any_two_leads() {
    let app = TestApp::spawn().await;
    let a = app.create_lead(&ana("ana@acme.io")).await.lead_ext_id;
    let b = app.create_lead(&bob()).await.lead_ext_id;

    let body = json!({ "leads": [b, a] });
    let reply = app
        .call(Method::POST, "/api/merges", Some(WRITER), Some(&body))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let merged: MergeView = reply.json();
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/merges/{}", merged.merge_id).as_str())
    );
    assert_eq!(merged.survivor.lead.lead_ext_id, a);
    assert_eq!(merged.pair.similarity, None, "a person named this pair");
    let stored = app
        .store
        .get_review_pair(merged.pair.id)
        .await
        .expect("read");
    assert_eq!(stored.map(|p| p.status), Some(ReviewStatus::Merged));

    // The absorbed lead cannot be merged again.
    app.call(Method::POST, "/api/merges", Some(WRITER), Some(&body))
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn merge_requests_are_checked_before_anything_is_written() {
    let app = TestApp::spawn().await;
    let a = app.create_lead(&ana("ana@acme.io")).await.lead_ext_id;

    let itself = json!({ "leads": [a, a] });
    let reply = app
        .call(Method::POST, "/api/merges", Some(WRITER), Some(&itself))
        .await;
    assert_eq!(
        reply
            .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            .field_names(),
        ["leads"]
    );
    let three = json!({ "leads": [a, a, a] });
    let reply = app
        .call(Method::POST, "/api/merges", Some(WRITER), Some(&three))
        .await;
    assert_eq!(
        reply
            .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            .field_names(),
        ["leads"]
    );
    let unparsable = json!({ "leads": [a, "nope"] });
    let reply = app
        .call(Method::POST, "/api/merges", Some(WRITER), Some(&unparsable))
        .await;
    assert_eq!(
        reply
            .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            .field_names(),
        ["leads"]
    );
    let unknown = json!({ "leads": [a, "WEB-22222222"] });
    app.call(Method::POST, "/api/merges", Some(WRITER), Some(&unknown))
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    app.call(
        Method::POST,
        "/api/merges",
        Some(WRITER),
        Some(&json!({ "leads": "nope" })),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(app.stored(&a).version, 1, "nothing was written");

    app.call(
        Method::GET,
        "/api/duplicates?status=maybe&limit=0",
        Some(READER),
        None,
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    app.call(Method::GET, "/api/duplicates?cursor=x", Some(READER), None)
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    for path in [
        "/api/duplicates/not-a-uuid",
        "/api/duplicates/0195a3a0-0000-7000-8000-000000000000",
        "/api/merges/0195a3a0-0000-7000-8000-000000000000",
    ] {
        app.call(Method::GET, path, Some(READER), None)
            .await
            .error(StatusCode::NOT_FOUND, "not_found");
    }
    app.call(
        Method::POST,
        "/api/duplicates/0195a3a0-0000-7000-8000-000000000000/dismiss",
        Some(WRITER),
        None,
    )
    .await
    .error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn duplicate_routes_need_the_right_scope() {
    let (app, pair, _) = scanned().await;
    let id = pair.pair.id;
    for (method, path) in [
        (Method::POST, "/api/duplicates/scan".to_owned()),
        (Method::POST, format!("/api/duplicates/{id}/merge")),
        (Method::POST, format!("/api/duplicates/{id}/dismiss")),
        (Method::POST, "/api/merges".to_owned()),
    ] {
        app.call(
            method.clone(),
            &path,
            Some(READER),
            Some(&json!({"leads": []})),
        )
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
        app.call(method, &path, None, None)
            .await
            .error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    for path in [
        "/api/duplicates".to_owned(),
        format!("/api/duplicates/{id}"),
    ] {
        app.call(Method::GET, &path, None, None)
            .await
            .error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let still = app.store.get_review_pair(id).await.expect("read");
    assert_eq!(still.map(|p| p.status), Some(ReviewStatus::Open));
}
