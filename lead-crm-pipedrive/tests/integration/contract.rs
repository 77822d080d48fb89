//! What the adapter sends, held to Pipedrive's official OpenAPI files, and
//! how it reads changes and paces itself.

use lead_core::sync::{PushConfig, push_once};
use lead_core::{CrmClient, RepId};
use lead_crm_pipedrive::mock::Mock;
use lead_crm_pipedrive_spec::{Coverage, Recorded};
use serde_json::json;

use crate::push::{World, client};

/// Every request the mock received, validated; the coverage.
fn validated(mock: &Mock) -> Coverage {
    let requests: Vec<Recorded> = mock
        .company()
        .requests
        .iter()
        .map(|r| Recorded {
            method: r.method.clone(),
            path: r.path.clone(),
            query: r.query.clone(),
            headers: r.headers.clone(),
            body: r.body.clone(),
        })
        .collect();
    let mut coverage = Coverage::new();
    if let Err(report) = coverage.validate_all(&requests) {
        panic!("requests the official OpenAPI documents refuse:\n{report}");
    }
    coverage
}

#[tokio::test]
async fn every_request_the_adapter_sends_validates_against_the_official_openapi_files() {
    let mock = Mock::start().await;
    mock.company().add_user(7, "rep@sales.com");
    let crm = client(&mock);
    let world = World::new();
    for n in 0..3 {
        world.capture(n).await;
    }
    // Leads with their owner, persons, activities; then a repeat after a
    // change (updates); a check; a pull.
    let config = PushConfig::default();
    let report = push_once(&world.deps, &*world.store, &crm, &config)
        .await
        .expect("push");
    assert_eq!(report.leads_synced, 3, "{report:?}");
    let lead = world.store.leads()[0].clone();
    crm.push_leads(&[lead]).await.expect("a linked lead again");
    crm.check().await.expect("the token works");
    crm.pull_changes(None, 100).await.expect("a pull");

    let coverage = validated(&mock);
    println!("{coverage}");
    for operation in [
        "searchPersons",
        "addPerson",
        "updatePerson",
        "getPersons",
        "addLead",
        "updateLead",
        "addActivity",
        "getActivities",
        "getUsers",
        "getCurrentUser",
    ] {
        assert!(
            coverage.covers(operation),
            "{operation} not exercised: {coverage}"
        );
    }
}

#[tokio::test]
async fn the_pull_reads_changed_persons_with_their_owner_and_contact_fields() {
    let mock = Mock::start().await;
    mock.company().add_user(7, "rep@sales.com");
    let crm = client(&mock);
    let world = World::new();
    let lead = world.capture(0).await;
    let pushed = crm.push_leads(&[lead]).await.expect("push");
    let person: u64 = match &pushed[0] {
        lead_core::ports::PushOutcome::Synced(links) => links[0].id.parse().expect("an id"),
        other => panic!("{other:?}"),
    };
    let first = crm.pull_changes(None, 100).await.expect("pull");
    assert_eq!(first.changes.len(), 1);
    assert_eq!(
        first.changes[0].owner,
        Some(RepId::parse("rep@sales.com").expect("rep")),
        "the owner read back as the rep"
    );

    mock.company().change_person(
        person,
        json!({"phones": [{"value": "+358401234567", "primary": true, "label": "mobile"}]}),
    );
    let since = crm
        .pull_changes(first.next_watermark.clone(), 100)
        .await
        .expect("pull since");
    assert_eq!(since.changes.len(), 1, "{:?}", since.changes);
    let change = &since.changes[0];
    assert_eq!(change.link.id, person.to_string());
    assert_eq!(
        change.contact.get("phone").map(String::as_str),
        Some("+358401234567")
    );
    assert!(since.next_watermark > first.next_watermark);
    let none = crm
        .pull_changes(since.next_watermark.clone(), 100)
        .await
        .expect("pull again");
    assert!(none.changes.is_empty(), "read once: {:?}", none.changes);
}

#[tokio::test]
async fn a_rate_limit_window_near_empty_slows_the_client_before_any_429() {
    let mock = Mock::start().await;
    // Four calls per two-second window; three leads cost nine (search,
    // person, lead each). A 429 would make a lead's outcome a retry or
    // fail the call.
    mock.company().budget = 4;
    let crm = client(&mock);
    let world = World::new();
    let mut leads = Vec::new();
    for n in 0..3 {
        let mut lead = world.capture(n).await;
        lead.assigned_to = None;
        leads.push(lead);
    }
    let outcomes = crm
        .push_leads(&leads)
        .await
        .expect("no 429 stopped the call");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, lead_core::ports::PushOutcome::Synced(_))),
        "{outcomes:?}"
    );
    let company = mock.company();
    assert_eq!(
        company.calls.len(),
        9,
        "no call repeated: {:?}",
        company.calls
    );
    assert_eq!(
        company.writes.values().sum::<u32>(),
        6,
        "three persons and three leads, each written once"
    );
}
