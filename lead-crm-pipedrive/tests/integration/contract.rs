//! What the adapter sends, held to Pipedrive's official OpenAPI files, and
//! how it reads changes and paces itself.

use lead_core::ports::{PushOutcome, TaskPush};
use lead_core::sync::{PushConfig, push_once};
use lead_core::{CrmClient, Lead, RepId, Stage};
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

/// `lead` with the links of a push's outcome, as the engine records them.
pub(crate) fn linked(mut lead: Lead, outcome: &PushOutcome) -> Lead {
    let links = match outcome {
        PushOutcome::Synced(links) | PushOutcome::Partly { links, .. } => links,
        other => panic!("not pushed: {other:?}"),
    };
    for link in links {
        lead.crm_links.retain(|l| l.object != link.object);
        lead.crm_links.push(link.clone());
    }
    lead
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
    // New leads with their owner, persons, notes and activities.
    let report = push_once(&world.deps, &*world.store, &crm, &PushConfig::default())
        .await
        .expect("push");
    assert_eq!(report.leads_synced, 3, "{report:?}");
    // A linked lead again with a new phone: person read and changed, lead
    // and note written again.
    let mut lead = world.store.leads()[0].clone();
    lead.fields.phone = Some(
        lead_core::Phone::parse(
            "+34 699 000 111",
            lead_core::Region::parse("ES").expect("a region"),
        )
        .expect("a phone"),
    );
    let again = crm.push_leads(&[lead.clone()]).await.expect("again");
    // Qualified: converted to a deal; then won: the deal is closed.
    lead.stage = Stage::Qualified;
    let lead = linked(lead, &again[0]);
    let converted = crm
        .push_leads(std::slice::from_ref(&lead))
        .await
        .expect("converted");
    let mut lead = linked(lead, &converted[0]);
    assert!(
        lead.crm_links.iter().any(|l| l.object == "deal"),
        "{converted:?}"
    );
    lead.stage = Stage::Won;
    crm.push_leads(&[lead.clone()]).await.expect("won");
    // Its task again, now on the deal: the activity moved and is updated.
    let task = world.task_of(&lead).await;
    let task_again = crm
        .push_tasks(&[TaskPush {
            task,
            lead: lead.clone(),
        }])
        .await
        .expect("the task again");
    assert!(
        matches!(task_again[0], PushOutcome::Synced(_)),
        "{task_again:?}"
    );
    // A lead pushed before a crash lost its links: its Pipedrive lead and
    // note are found again, not made twice.
    let unlinked = world.store.leads()[1].clone();
    let mut forgotten = unlinked.clone();
    forgotten.crm_links.clear();
    crm.push_leads(&[forgotten]).await.expect("found again");
    crm.check().await.expect("the token works");
    crm.pull_changes(None, 100).await.expect("a pull");
    crm.subscribe(
        "https://leads.example.com/webhook/crm/pipedrive",
        "pd",
        &"s3cret".to_owned().into(),
    )
    .await
    .expect("subscribed");

    let coverage = validated(&mock);
    println!("{coverage}");
    for operation in [
        "searchPersons",
        "addPerson",
        "getPerson",
        "updatePerson",
        "getPersons",
        "addLead",
        "updateLead",
        "getLeads",
        "getArchivedLeads",
        "convertLeadToDeal",
        "getLeadConversionStatus",
        "updateDeal",
        "getDeals",
        "addNote",
        "updateNote",
        "getNotes",
        "addActivity",
        "updateActivity",
        "getActivities",
        "getUsers",
        "getCurrentUser",
        "getWebhooks",
        "addWebhook",
    ] {
        assert!(
            coverage.covers(operation),
            "{operation} not exercised: {coverage}"
        );
    }
    let company = mock.company();
    assert_eq!(company.persons.len(), 3, "no twin person");
    assert_eq!(company.notes.len(), 3, "no twin note");
    assert_eq!(company.leads.len() + company.deals.len(), 3, "no twin lead");
    assert_eq!(company.activities.len(), 3, "no twin activity");
    assert_eq!(company.webhooks.len(), 3, "persons, leads and deals");
}

#[tokio::test]
async fn the_pull_reads_persons_leads_and_deals_once_each() {
    let mock = Mock::start().await;
    mock.company().add_user(7, "rep@sales.com");
    let crm = client(&mock);
    let world = World::new();
    let mut lead = world.capture(0).await;
    let other = world.capture(1).await;
    let pushed = crm
        .push_leads(&[lead.clone(), other.clone()])
        .await
        .expect("push");
    lead.stage = Stage::Qualified;
    let lead = linked(lead, &pushed[0]);
    let converted = crm
        .push_leads(std::slice::from_ref(&lead))
        .await
        .expect("converted");
    let lead = linked(lead, &converted[0]);
    let other = linked(other, &pushed[1]);
    let id_of = |lead: &Lead, object: &str| {
        lead.crm_links
            .iter()
            .find(|l| l.object == object)
            .map(|l| l.id.clone())
            .expect("linked")
    };
    let first = crm.pull_changes(None, 100).await.expect("pull");
    let rep = RepId::parse("rep@sales.com").expect("rep");
    let deal = first
        .changes
        .iter()
        .find(|c| c.link.object == "deal")
        .expect("the deal is read");
    assert_eq!(
        deal.owner.as_ref(),
        Some(&rep),
        "the owner read back as the rep"
    );
    assert_eq!(
        deal.stage, None,
        "an open deal in an unmapped stage says nothing"
    );
    assert!(first.changes.iter().any(|c| c.link.object == "person"));

    let person: u64 = id_of(&lead, "person").parse().expect("an id");
    let deal_id: u64 = id_of(&lead, "deal").parse().expect("an id");
    {
        let mut company = mock.company();
        company.change_person(
            person,
            json!({"phones": [{"value": "+358401234567", "primary": true, "label": "mobile"}]}),
        );
        company.change_deal(deal_id, json!({"status": "lost"}));
        company.archive_lead(&id_of(&other, "lead"));
    }
    let since = crm
        .pull_changes(first.next_watermark.clone(), 100)
        .await
        .expect("pull since");
    let of = |object: &str| {
        since
            .changes
            .iter()
            .find(|c| c.link.object == object)
            .unwrap_or_else(|| panic!("a {object} change in {:?}", since.changes))
    };
    assert_eq!(since.changes.len(), 3, "{:?}", since.changes);
    assert_eq!(
        of("person").contact.get("phone").map(String::as_str),
        Some("+358401234567")
    );
    assert_eq!(of("deal").stage, Some(Stage::Lost));
    assert_eq!(
        of("lead").stage,
        Some(Stage::Lost),
        "archived reads as lost"
    );
    assert_eq!(of("lead").link.id, id_of(&other, "lead"));
    let none = crm
        .pull_changes(since.next_watermark.clone(), 100)
        .await
        .expect("pull again");
    assert!(none.changes.is_empty(), "read once: {:?}", none.changes);
}

#[tokio::test]
async fn a_rate_limit_window_near_empty_slows_the_client_before_any_429() {
    let mock = Mock::start().await;
    // Four calls per two-second window; three leads cost twelve (search,
    // person, lead, note each). A 429 would make a lead's outcome a retry or
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
        12,
        "no call repeated: {:?}",
        company.calls
    );
    assert_eq!(
        company.writes.values().sum::<u32>(),
        9,
        "three persons, leads and notes, each written once"
    );
}
