//! The sync engine's shared CRM suite (`lead_core::crm_conformance`)
//! against the Salesforce adapter and its contract mock.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use lead_core::crm_conformance::{self, CrmMock, Failure};
use lead_core::{CrmClient, LeadExtId};
use lead_crm_salesforce::mock::Mock;
use serde_json::json;

use crate::push::client;

struct Salesforce(Mock);

#[async_trait]
impl CrmMock for Salesforce {
    fn client(&self) -> Arc<dyn CrmClient> {
        Arc::new(client(&self.0))
    }

    async fn lead_records(&self) -> usize {
        self.0.org().leads.len()
    }

    async fn task_records(&self) -> usize {
        self.0.org().tasks.len()
    }

    async fn writes_of(&self, lead: &LeadExtId) -> u32 {
        let key = format!("Lead/{}", lead.as_str());
        self.0.org().writes.get(&key).copied().unwrap_or(0)
    }

    async fn fail_next(&self, failure: Failure, count: usize) {
        let answer = match failure {
            Failure::RateLimited => (
                StatusCode::FORBIDDEN,
                json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]),
            ),
            Failure::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!([{"message": "Service unavailable", "errorCode": "SERVER_UNAVAILABLE"}]),
            ),
        };
        let mut org = self.0.org();
        for _ in 0..count {
            org.failures.push_back(answer.clone());
        }
    }

    async fn refuse_email(&self, email: &str, refuse: bool) {
        let mut org = self.0.org();
        if refuse {
            org.refused.insert(
                email.to_owned(),
                json!({"statusCode": "INVALID_EMAIL_ADDRESS", "message": "Email: invalid email address", "fields": ["Email"]}),
            );
        } else {
            org.refused.remove(email);
        }
    }

    async fn lose_in_crm(&self, lead: &LeadExtId, minutes: i64) {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .expect("noon")
            + chrono::Duration::minutes(minutes);
        self.0
            .org()
            .set_status_at(lead.as_str(), "Closed - Not Converted", at);
    }
}

#[tokio::test]
async fn salesforce_passes_the_crm_suite() {
    crm_conformance::run_all(|| async { Salesforce(Mock::start().await) }).await;
}
