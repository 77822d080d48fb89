use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use lead_core::ports::PushOutcome;
use lead_core::sync::{PushConfig, push_once};
use lead_core::{
    CrmClient, CrmKind, Deps, Destination, Error, InMemoryStore, Lead, LeadInput, ManualClock,
    OutboxStore, Policy, Rep, RepId, SequentialIds, WorkingHours, usecase,
};
use lead_crm_salesforce::{Flow, SalesforceClient, SalesforceConfig};
use serde_json::json;

use lead_crm_salesforce::mock::{CLIENT_ID, CLIENT_SECRET, LIMIT, Mock};

pub(crate) fn client(mock: &Mock) -> SalesforceClient {
    let config = SalesforceConfig::new(
        mock.url.clone(),
        Flow::ClientCredentials {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.to_owned().into(),
        },
    );
    SalesforceClient::new(config).expect("client")
}

pub(crate) struct World {
    pub(crate) store: Arc<InMemoryStore>,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) deps: Deps,
}

impl World {
    pub(crate) fn new() -> World {
        let mut rep = Rep::new(RepId::parse("rep@sales.com").expect("rep id"), "Rep");
        rep.working_hours = WorkingHours::always();
        let store = Arc::new(InMemoryStore::with_reps([rep]));
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
                .single()
                .expect("instant"),
        ));
        let deps = Deps::with(
            store.clone(),
            clock.clone(),
            Arc::new(SequentialIds::default()),
        );
        World { store, clock, deps }
    }

    pub(crate) async fn capture(&self, n: usize) -> Lead {
        let input = LeadInput {
            email: Some(format!("person{n}@company{n}.com")),
            first_name: Some("Ana".into()),
            last_name: Some(format!("López {n}")),
            company: Some(format!("Company {n}")),
            ..Default::default()
        };
        usecase::capture(&input, &Policy::default(), &self.deps)
            .await
            .expect("capture")
            .lead
    }

    /// Leads 0 to `n - 1`, captured in order.
    pub(crate) async fn capture_many(&self, n: usize) -> Vec<Lead> {
        let mut leads = Vec::with_capacity(n);
        for i in 0..n {
            leads.push(self.capture(i).await);
        }
        leads
    }
}

#[tokio::test]
async fn leads_go_200_per_call_after_one_login_and_a_repeat_updates_them() {
    let mock = Mock::start().await;
    let crm = client(&mock);
    let world = World::new();
    let mut leads = world.capture_many(450).await;
    // Routing stops giving the one rep leads at their capacity; here
    // every lead is theirs, so all go in owned calls.
    let rep = RepId::parse("rep@sales.com").expect("rep id");
    for lead in &mut leads {
        lead.assigned_to = Some(rep.clone());
    }
    mock.org()
        .users
        .insert("rep@sales.com".into(), "0055w00000Rep01AAA".into());

    let outcomes = crm.push_leads(&leads).await.expect("push");
    assert_eq!(outcomes.len(), 450);
    assert!(outcomes.iter().all(|o| matches!(o, PushOutcome::Synced(_))));
    {
        let org = mock.org();
        assert_eq!(org.logins, 1, "one login, the token reused");
        assert_eq!(
            org.calls,
            [
                "GET /query",
                "PATCH /composite/sobjects/Lead/Web_Lead_Id__c",
                "PATCH /composite/sobjects/Lead/Web_Lead_Id__c",
                "PATCH /composite/sobjects/Lead/Web_Lead_Id__c",
            ],
            "the user directory once, then 450 records in 200 + 200 + 50"
        );
        assert!(
            org.leads
                .values()
                .all(|l| l["OwnerId"] == json!("0055w00000Rep01AAA")),
            "the routed rep's user owns every lead (Sforce-Auto-Assign: FALSE kept the org's rules out)"
        );
        assert_eq!(org.leads.len(), 450);
        let first = &org.leads[leads[0].ext_id.as_str()];
        assert_eq!(first["Email"], json!("person0@company0.com"));
        assert_eq!(first["LastName"], json!("López 0"));
        assert_eq!(first["Status"], json!("Open - Not Contacted"));
    }
    assert_eq!(
        crm.api_usage().map(|u| (u.used, u.limit)),
        Some((4, LIMIT)),
        "Sforce-Limit-Info is read"
    );

    let again = crm.push_leads(&leads[..10]).await.expect("push again");
    let ids = |o: &[PushOutcome]| -> Vec<String> {
        o.iter()
            .map(|o| match o {
                PushOutcome::Synced(links) => links[0].id.clone(),
                other => panic!("not synced: {other:?}"),
            })
            .collect()
    };
    assert_eq!(ids(&again), ids(&outcomes[..10]), "the same Lead records");
    assert_eq!(mock.org().leads.len(), 450, "an upsert never makes a twin");
    assert_eq!(
        mock.org().calls.len(),
        5,
        "the directory is cached: one more collection call"
    );
}

#[tokio::test]
async fn an_expired_session_costs_exactly_one_login_and_the_call_goes_through() {
    let mock = Mock::start().await;
    let crm = client(&mock);
    let world = World::new();
    let lead = world.capture(1).await;
    crm.push_leads(std::slice::from_ref(&lead))
        .await
        .expect("first push");
    mock.org().expire_sessions();

    let outcomes = crm
        .push_leads(std::slice::from_ref(&lead))
        .await
        .expect("after expiry");
    assert!(matches!(outcomes[0], PushOutcome::Synced(_)));
    assert_eq!(mock.org().logins, 2);
    assert_eq!(crm.logins(), 2);
}

#[tokio::test]
async fn wrong_credentials_are_a_refused_login_naming_salesforces_reason() {
    let mock = Mock::start().await;
    let config = SalesforceConfig::new(
        mock.url.clone(),
        Flow::ClientCredentials {
            client_id: CLIENT_ID.into(),
            client_secret: "wrong-secret".to_owned().into(),
        },
    );
    let crm = SalesforceClient::new(config).expect("client");
    let world = World::new();
    let err = crm
        .push_leads(&[world.capture(1).await])
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Unauthorized(_)), "{err:?}");
    assert!(err.to_string().contains("invalid_client"), "{err}");
    assert!(!err.chain().contains("wrong-secret"), "{}", err.chain());
    assert!(!format!("{crm:?}").contains("secret"), "{crm:?}");
}

#[tokio::test]
async fn limits_and_outages_are_temporary_and_a_bad_record_fails_alone() {
    let mock = Mock::start().await;
    let crm = client(&mock);
    let world = World::new();
    let leads = vec![world.capture(1).await, world.capture(2).await];
    {
        let mut org = mock.org();
        org.failures.push_back((
            StatusCode::FORBIDDEN,
            json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]),
        ));
        org.failures
            .push_back((StatusCode::SERVICE_UNAVAILABLE, json!([])));
        org.refused.insert(
            "person2@company2.com".into(),
            json!({"statusCode": "INVALID_EMAIL_ADDRESS", "message": "Email: invalid email address", "fields": ["Email"]}),
        );
    }
    let limited = crm.push_leads(&leads).await.expect_err("over the limit");
    assert!(matches!(limited, Error::RateLimited { .. }), "{limited:?}");
    let down = crm.push_leads(&leads).await.expect_err("unavailable");
    assert!(down.is_temporary(), "{down:?}");

    let outcomes = crm.push_leads(&leads).await.expect("push");
    assert!(
        matches!(outcomes[0], PushOutcome::Synced(_)),
        "{outcomes:?}"
    );
    match &outcomes[1] {
        PushOutcome::Rejected(why) => assert!(why.contains("INVALID_EMAIL_ADDRESS"), "{why}"),
        other => panic!("not rejected: {other:?}"),
    }
    assert_eq!(mock.org().leads.len(), 1);
}

#[tokio::test]
async fn the_push_engine_delivers_leads_and_tasks_once_through_the_adapter() {
    let mock = Mock::start().await;
    let crm = client(&mock);
    let world = World::new();
    for n in 0..5 {
        world.capture(n).await;
    }
    let config = PushConfig::default();

    let report = push_once(&world.deps, &*world.store, &crm, &config)
        .await
        .expect("push");
    assert_eq!(
        (report.leads_synced, report.tasks_synced),
        (5, 5),
        "{report:?}"
    );
    assert_eq!(
        world
            .store
            .pending_count(&Destination::CRM)
            .await
            .expect("backlog"),
        0
    );
    {
        let org = mock.org();
        assert_eq!(org.leads.len(), 5);
        assert_eq!(org.tasks.len(), 5);
        assert_eq!(org.logins, 1);
        // The user directory (the leads have an owner), one collection
        // call for the leads, one for the tasks.
        assert_eq!(
            org.calls,
            [
                "GET /query",
                "PATCH /composite/sobjects/Lead/Web_Lead_Id__c",
                "PATCH /composite/sobjects/Task/Web_Task_Id__c"
            ]
        );
        for task in org.tasks.values() {
            let who = task["WhoId"].as_str().expect("WhoId");
            assert!(org.leads.values().any(|l| l["Id"] == json!(who)), "{task}");
        }
    }
    let stored = world.store.leads();
    assert!(
        stored
            .iter()
            .all(|l| l.crm_links.iter().any(|c| c.crm == CrmKind::Salesforce)),
        "every lead knows its Salesforce id"
    );

    // A worker that crashed after pushing but before acknowledging: the
    // same entries come back and change nothing in the org.
    world.clock.advance(chrono::Duration::hours(1));
    let lead = stored[0].clone();
    let again = crm
        .push_leads(std::slice::from_ref(&lead))
        .await
        .expect("repeat");
    assert!(matches!(again[0], PushOutcome::Synced(_)));
    assert_eq!(mock.org().leads.len(), 5);
}

#[tokio::test]
async fn an_org_near_its_daily_limit_is_left_its_reserve() {
    let mock = Mock::start().await;
    let crm = client(&mock);
    let world = World::new();
    let mut leads = world.capture_many(2).await;
    for lead in &mut leads {
        lead.assigned_to = None;
    }
    // Other integrations used all but 4 % of the org's calls.
    mock.org().used = LIMIT - LIMIT / 25;
    crm.push_leads(&leads[..1])
        .await
        .expect("a call tells the usage");
    let calls = mock.org().calls.len();
    let held = crm.push_leads(&leads[1..]).await.expect_err("held back");
    assert!(
        matches!(held, Error::RateLimited { retry_after: Some(after) } if after > std::time::Duration::from_secs(60)),
        "{held:?}"
    );
    assert_eq!(mock.org().calls.len(), calls, "no call spent on it");
}
