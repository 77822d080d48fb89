//! What the adapter writes beyond the Lead's own fields: owners mapped to
//! users (and the org's assignment rules kept out), the single-record
//! upsert's statuses, and Opportunities for qualified leads.

use lead_core::ports::PushOutcome;
use lead_core::{CrmClient, Lead, RepId, Stage};
use lead_crm_salesforce::mock::{ASSIGNMENT_QUEUE, CLIENT_ID, CLIENT_SECRET, Mock};
use lead_crm_salesforce::{Flow, SalesforceClient, SalesforceConfig};
use serde_json::json;

use crate::push::{World, client};

fn synced_id(outcome: &PushOutcome) -> String {
    match outcome {
        PushOutcome::Synced(links) => links[0].id.clone(),
        other => panic!("not synced: {other:?}"),
    }
}

#[tokio::test]
async fn a_rep_without_a_salesforce_user_leaves_the_owner_to_the_orgs_rules() {
    let mock = Mock::start().await;
    let crm = client(&mock);
    let world = World::new();
    let mut leads = world.capture_many(3).await;
    mock.org()
        .users
        .insert("rep@sales.com".into(), "0055w00000Rep01AAA".into());
    // The third lead's rep has no user in the org.
    leads[2].assigned_to = Some(RepId::parse("nobody@sales.com").expect("rep"));

    let outcomes = crm.push_leads(&leads).await.expect("push");
    assert!(outcomes.iter().all(|o| matches!(o, PushOutcome::Synced(_))));
    let org = mock.org();
    assert_eq!(
        org.calls,
        [
            "GET /query",
            "PATCH /composite/sobjects/Lead/Web_Lead_Id__c",
            "PATCH /sobjects/Lead/Web_Lead_Id__c",
        ],
        "owned leads in one call with Sforce-Auto-Assign: FALSE, the other alone without it"
    );
    assert_eq!(
        org.leads[leads[0].ext_id.as_str()]["OwnerId"],
        json!("0055w00000Rep01AAA")
    );
    assert_eq!(
        org.leads[leads[2].ext_id.as_str()]["OwnerId"],
        json!(ASSIGNMENT_QUEUE),
        "no owner sent: the org's assignment rule decided"
    );
}

#[tokio::test]
async fn a_pulled_owner_is_the_rep_whose_user_owns_the_lead() {
    let mock = Mock::start().await;
    let crm = client(&mock);
    let world = World::new();
    let leads = world.capture_many(1).await;
    {
        let mut org = mock.org();
        org.users
            .insert("rep@sales.com".into(), "0055w00000Rep01AAA".into());
        org.users
            .insert("Other@Sales.com".into(), "0055w00000Rep02AAA".into());
    }
    crm.push_leads(&leads).await.expect("push");
    mock.org()
        .set_owner(leads[0].ext_id.as_str(), "0055w00000Rep02AAA");
    let pulled = crm.pull_changes(None, 10).await.expect("pull");
    assert_eq!(
        pulled.changes[0].owner,
        Some(RepId::parse("other@sales.com").expect("rep")),
        "matched by e-mail, case aside"
    );
    mock.org()
        .set_owner(leads[0].ext_id.as_str(), ASSIGNMENT_QUEUE);
    let queued = crm
        .pull_changes(pulled.next_watermark, 10)
        .await
        .expect("pull");
    assert_eq!(queued.changes[0].owner, None, "a queue is nobody's");
}

#[tokio::test]
async fn the_single_record_upsert_reads_201_200_and_300() {
    let mock = Mock::start().await;
    let crm = client(&mock);
    let world = World::new();
    let mut lead = world.capture(0).await;
    lead.assigned_to = None;

    let created = crm
        .push_leads(std::slice::from_ref(&lead))
        .await
        .expect("push");
    let updated = crm
        .push_leads(std::slice::from_ref(&lead))
        .await
        .expect("push again");
    assert_eq!(synced_id(&created[0]), synced_id(&updated[0]));
    assert_eq!(mock.org().leads.len(), 1);
    assert_eq!(
        mock.org().calls,
        [
            "PATCH /sobjects/Lead/Web_Lead_Id__c",
            "PATCH /sobjects/Lead/Web_Lead_Id__c"
        ]
    );

    mock.org().ambiguous.insert(lead.ext_id.as_str().to_owned());
    let twins = crm
        .push_leads(std::slice::from_ref(&lead))
        .await
        .expect("push");
    match &twins[0] {
        PushOutcome::Rejected(why) => assert!(why.contains("more than one Lead"), "{why}"),
        other => panic!("a 300 is for a person to sort out: {other:?}"),
    }

    let mut nameless = world.capture(1).await;
    nameless.assigned_to = None;
    nameless.fields.company = None;
    mock.org().refused.insert(
        nameless.fields.email.as_str().to_owned(),
        json!({"statusCode": "INVALID_EMAIL_ADDRESS", "message": "Email: invalid email address", "fields": ["Email"]}),
    );
    let refused = crm
        .push_leads(std::slice::from_ref(&nameless))
        .await
        .expect("push");
    match &refused[0] {
        PushOutcome::Rejected(why) => assert!(why.contains("INVALID_EMAIL_ADDRESS"), "{why}"),
        other => panic!("a 400 refuses the record: {other:?}"),
    }
}

fn deals_client(mock: &Mock) -> SalesforceClient {
    let mut config = SalesforceConfig::new(
        mock.url.clone(),
        Flow::ClientCredentials {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.to_owned().into(),
        },
    );
    config.create_deals = true;
    SalesforceClient::new(config).expect("client")
}

#[tokio::test]
async fn with_create_deals_a_qualified_lead_gets_one_opportunity() {
    let mock = Mock::start().await;
    let crm = deals_client(&mock);
    let world = World::new();
    let leads: Vec<Lead> = world
        .capture_many(3)
        .await
        .into_iter()
        .enumerate()
        .map(|(i, mut lead)| {
            if i > 0 {
                lead.stage = Stage::Qualified;
            }
            lead
        })
        .collect();

    let first = crm.push_leads(&leads).await.expect("push");
    let again = crm.push_leads(&leads).await.expect("push again");
    let org = mock.org();
    assert_eq!(
        org.opportunities.len(),
        2,
        "one per qualified lead, however often pushed"
    );
    let deal = &org.opportunities[leads[1].ext_id.as_str()];
    assert_eq!(deal["StageName"], json!("Qualification"));
    assert_eq!(deal["Name"], json!("Company 1 (web lead)"));
    assert!(deal["CloseDate"].as_str().is_some_and(|d| d.len() == 10));
    for outcomes in [&first, &again] {
        match &outcomes[1] {
            PushOutcome::Synced(links) => assert_eq!(
                links.iter().map(|l| l.object.as_str()).collect::<Vec<_>>(),
                ["Lead", "Opportunity"]
            ),
            other => panic!("{other:?}"),
        }
        match &outcomes[0] {
            PushOutcome::Synced(links) => assert_eq!(links.len(), 1, "a new lead: no deal"),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn the_pull_reads_contact_fields_but_not_the_stand_ins_the_push_wrote() {
    let mock = Mock::start().await;
    let crm = client(&mock);
    let world = World::new();
    let mut lead = world.capture(0).await;
    lead.fields.company = None;
    let mut nameless = world.capture(1).await;
    nameless.fields.last_name = None;
    crm.push_leads(&[lead.clone(), nameless.clone()])
        .await
        .expect("push");
    assert_eq!(
        mock.org().leads[lead.ext_id.as_str()]["Company"],
        json!("[not provided]")
    );
    mock.org()
        .set_field(lead.ext_id.as_str(), "Title", "Head of Sales");

    let pulled = crm.pull_changes(None, 10).await.expect("pull");
    let of = |id: &str| {
        pulled
            .changes
            .iter()
            .find(|c| c.lead.as_ref().is_some_and(|l| l.as_str() == id))
            .expect("pulled")
            .contact
            .clone()
    };
    let first = of(lead.ext_id.as_str());
    assert_eq!(
        first.get("job_title").map(String::as_str),
        Some("Head of Sales")
    );
    assert_eq!(first.get("last_name").map(String::as_str), Some("López 0"));
    assert_eq!(first.get("first_name").map(String::as_str), Some("Ana"));
    assert!(!first.contains_key("company"), "a stand-in: {first:?}");
    let second = of(nameless.ext_id.as_str());
    assert!(
        !second.contains_key("last_name"),
        "LastName holds the first name when there is no last name: {second:?}"
    );
}

#[tokio::test]
async fn an_org_without_the_opportunity_field_still_gets_the_leads() {
    let mock = Mock::start().await;
    let crm = deals_client(&mock);
    mock.org()
        .missing_fields
        .insert("Opportunity/Web_Lead_Id__c".into());
    let world = World::new();
    let mut leads = world.capture_many(2).await;
    leads[1].stage = Stage::Qualified;

    let outcomes = crm.push_leads(&leads).await.expect("push");
    assert!(
        matches!(outcomes[0], PushOutcome::Synced(_)),
        "{outcomes:?}"
    );
    match &outcomes[1] {
        PushOutcome::Partly {
            links,
            problem,
            temporary,
        } => {
            assert_eq!(links[0].object, "Lead", "the Lead is in");
            assert!(problem.contains("Web_Lead_Id__c"), "{problem}");
            assert!(!temporary, "a missing field needs a person");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(mock.org().leads.len(), 2);
}
