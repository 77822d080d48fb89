//! The reads before a capture ([`LeadStore::capture_context`]), many
//! captures per statement.
//!
//! A capture reads its idempotency key, the lead holding its e-mail, its
//! account's owner and every rep's workload before it decides. Under load
//! one reader task gathers the captures waiting to read (the batching of
//! group commit, [`lead_store_sql::Batcher`]) and answers them all with one
//! statement on a connection it keeps while busy: one round trip for N
//! captures, and the reps read once for all of them.
//!
//! [`LeadStore::capture_context`]: lead_core::LeadStore::capture_context

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use lead_core::{AccountKey, CaptureContext, RepState, Result};
use lead_store_sql::codec::rep_load;
use lead_store_sql::replicate;

use crate::codec::{from_json, micros, rep_of};
use crate::error::StoreError;
use crate::held::HeldConnection;
use lead_store_sql::reads::lead_of;

type Fallible<T> = std::result::Result<T, StoreError>;

/// One capture's reads.
#[derive(Debug)]
pub(crate) struct ContextRequest {
    pub(crate) idempotency_key: Option<String>,
    pub(crate) email_key: String,
    pub(crate) account: AccountKey,
    pub(crate) now: DateTime<Utc>,
}

/// Answers `requests`, in order, with one statement: per request the
/// live idempotency key (a join on its primary key, for the lead and the
/// request hash) and two lookups as scalar subqueries over the arrays, and the reps (as
/// one JSON array) on the first row only. The statement failing fails
/// them all; a row that does not decode fails its request alone.
pub(crate) async fn contexts_on(
    conn: &mut PgConnection,
    requests: &[ContextRequest],
) -> Fallible<Vec<Fallible<CaptureContext>>> {
    type Row = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let mut keys = Vec::with_capacity(requests.len());
    let mut emails = Vec::with_capacity(requests.len());
    let mut companies = Vec::with_capacity(requests.len());
    let mut domains = Vec::with_capacity(requests.len());
    let mut nows = Vec::with_capacity(requests.len());
    for r in requests {
        keys.push(r.idempotency_key.as_deref());
        emails.push(r.email_key.as_str());
        companies.push(r.account.company.as_deref());
        domains.push(r.account.domain.as_deref());
        nows.push(micros(r.now));
    }
    let rows: Vec<Row> = sqlx::query_as(concat!(
        "SELECT \
         k.lead, \
         (SELECT doc::text FROM leads WHERE email_key = r.email AND merged_into IS NULL), (",
        owner_query!("r.company", "r.domain"),
        "), CASE WHEN r.n = 1 THEN (SELECT COALESCE(json_agg(json_build_array(profile, \
         open_leads, assigned_today, today::text, last_assigned_at, pass) ORDER BY id), \
         '[]')::text FROM reps) END, \
         k.request_hash \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[]) \
         WITH ORDINALITY AS r(key, email, company, domain, now, n) \
         LEFT JOIN idempotency_keys k ON k.key = r.key AND k.expires_at > r.now \
         ORDER BY r.n",
    ))
    .bind(keys)
    .bind(emails)
    .bind(companies)
    .bind(domains)
    .bind(nows)
    .fetch_all(&mut *conn)
    .await?;
    if rows.len() != requests.len() {
        return Err(StoreError::Corrupt("capture context rows"));
    }
    let reps = match rows.first().and_then(|row| row.3.as_deref()) {
        Some(json) => reps_of(json)?,
        None => Vec::new(),
    };
    // A row that does not decode fails its own capture only: one corrupt
    // stored lead must not fail the captures batched with it.
    Ok(rows
        .into_iter()
        .map(|(replay, existing, owner, _, request_hash)| {
            Ok(CaptureContext {
                replay: replay
                    .map(|id| lead_store_sql::codec::replay((id, request_hash)))
                    .transpose()?,
                existing: existing.as_deref().map(lead_of).transpose()?,
                owner: owner.as_deref().map(rep_of).transpose()?,
                reps: reps.clone(),
            })
        })
        .collect())
}

/// Every rep's profile and workload from the JSON array `contexts_on`
/// builds.
fn reps_of(json: &str) -> Fallible<Vec<RepState>> {
    type RepJson = (
        serde_json::Value,
        i64,
        i64,
        Option<String>,
        Option<i64>,
        f64,
    );
    let reps: Vec<RepJson> = from_json("rep states", json)?;
    reps.into_iter()
        .map(|(profile, open, today_count, today, last, pass)| {
            Ok(RepState {
                rep: serde_json::from_value(profile)
                    .map_err(|_| StoreError::Corrupt("rep profile"))?,
                load: rep_load((open, today_count, today, last, pass))?,
            })
        })
        .collect()
}

/// The reader task's batch runner: the connection it keeps while busy.
#[derive(Debug, Clone)]
pub(crate) struct ContextReader {
    conn: HeldConnection,
}

impl ContextReader {
    /// A reader over `pool`.
    pub(crate) fn new(pool: sqlx::PgPool) -> Self {
        Self {
            conn: HeldConnection::new(pool),
        }
    }

    /// Answers a gathered batch, one context per request, in order; a
    /// failed statement fails every request of the batch alike.
    pub(crate) async fn read_batch(
        &self,
        requests: Vec<ContextRequest>,
    ) -> Vec<Result<CaptureContext>> {
        let fail = |err: StoreError| {
            let err = lead_core::Error::from(err);
            requests.iter().map(|_| Err(replicate(&err))).collect()
        };
        let mut checkout = match self.conn.checkout().await {
            Ok(checkout) => checkout,
            Err(err) => return fail(err.into()),
        };
        match contexts_on(&mut checkout.conn, &requests).await {
            Ok(contexts) => {
                checkout.keep();
                contexts
                    .into_iter()
                    .map(|c| c.map_err(lead_core::Error::from))
                    .collect()
            }
            Err(err) => fail(err),
        }
    }
}
