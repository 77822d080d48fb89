//! The sync engine's shared CRM suite (`lead_core::crm_conformance`)
//! against the Pipedrive adapter and its contract mock: the same checks
//! Salesforce passes.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use lead_core::crm_conformance::{self, CrmMock, Failure};
use lead_core::{CrmClient, LeadExtId};
use lead_crm_pipedrive::mock::Mock;
use serde_json::json;

use crate::push::client;

struct Pipedrive(Mock);

impl Pipedrive {
    /// The Pipedrive lead of our lead: the one its score note (which
    /// names our lead id) hangs on.
    fn pipedrive_lead_of(&self, lead: &LeadExtId) -> Option<String> {
        let company = self.0.company();
        company
            .notes
            .values()
            .find(|n| {
                n["content"]
                    .as_str()
                    .is_some_and(|c| c.contains(&format!("lead {lead}")))
            })
            .and_then(|n| n["lead_id"].as_str().map(str::to_owned))
    }
}

#[async_trait]
impl CrmMock for Pipedrive {
    fn client(&self) -> Arc<dyn CrmClient> {
        Arc::new(client(&self.0))
    }

    async fn lead_records(&self) -> usize {
        self.0.company().persons.len()
    }

    async fn task_records(&self) -> usize {
        self.0.company().activities.len()
    }

    async fn writes_of(&self, lead: &LeadExtId) -> u32 {
        let Some(id) = self.pipedrive_lead_of(lead) else {
            return 0;
        };
        let key = format!("lead/{id}");
        self.0.company().writes.get(&key).copied().unwrap_or(0)
    }

    async fn fail_next(&self, failure: Failure, count: usize) {
        let answer = match failure {
            Failure::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"success": false, "error": "Request over limit", "errorCode": 429}),
            ),
            Failure::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"success": false, "error": "Service unavailable", "errorCode": 503}),
            ),
        };
        let mut company = self.0.company();
        for _ in 0..count {
            company.failures.push_back(answer.clone());
        }
    }

    async fn refuse_email(&self, email: &str, refuse: bool) {
        let mut company = self.0.company();
        if refuse {
            company.refused_emails.insert(email.to_ascii_lowercase());
        } else {
            company.refused_emails.remove(&email.to_ascii_lowercase());
        }
    }

    async fn lose_in_crm(&self, lead: &LeadExtId, minutes: i64) {
        let id = self
            .pipedrive_lead_of(lead)
            .expect("the lead was pushed first");
        let at = Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .expect("noon")
            + chrono::Duration::minutes(minutes);
        let mut company = self.0.company();
        let before = company.clock.replace(at);
        // Archived in the Leads Inbox: Pipedrive's "not going anywhere".
        company.archive_lead(&id);
        company.clock = before;
    }
}

#[tokio::test]
async fn pipedrive_passes_the_crm_suite() {
    crm_conformance::run_all(|| async { Pipedrive(Mock::start().await) }).await;
}
