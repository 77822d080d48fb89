//! How to reach an org: where to log in, with which OAuth flow, which API
//! version, and how our leads map onto its fields.

use std::collections::BTreeMap;

use lead_core::Stage;
use secrecy::SecretString;

/// The OAuth flow that gets the access token
/// (`../shared/crm-specs/CONTRACTS.md` §1.1).
///
/// Which one to use:
///
/// - [`Flow::ClientCredentials`] by default: Salesforce recommends it for
///   server-to-server work, the app runs as its "Run As" integration user
///   and there is only a consumer key and secret to keep.
/// - [`Flow::JwtBearer`] when the org's policy asks for a certificate
///   instead of a shared secret, or when the calls must run as a named,
///   pre-authorised user: the private key never leaves this program, only
///   its certificate is uploaded to the app.
/// - [`Flow::Password`] only for an org that still allows it: Salesforce
///   blocks it by default in orgs created since Summer '23 and is
///   deprecating it.
///
/// None of them gives a refresh token; the client logs in again when a
/// session expires.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Flow {
    /// `grant_type=client_credentials`: the recommended server-to-server
    /// flow; the connected (or external client) app runs as its
    /// integration user. Needs the org's My Domain login URL.
    ClientCredentials {
        /// The app's consumer key.
        client_id: String,
        /// The app's consumer secret.
        client_secret: SecretString,
    },
    /// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`: at each
    /// login the client signs a short JWT (RS256, `iss` the consumer key,
    /// `sub` the username, `aud` the audience, `exp` three minutes ahead)
    /// with the private key whose X.509 certificate is uploaded to the
    /// app. No client secret. The user (or its profile) must be
    /// pre-authorised for the app.
    ///
    /// The key is checked when the client is built
    /// ([`SalesforceClient::new`](crate::SalesforceClient::new) refuses a
    /// key that is not an RSA private key), not at the first login.
    JwtBearer {
        /// The app's consumer key (the JWT's `iss`).
        client_id: String,
        /// The user the calls run as (the JWT's `sub`).
        username: String,
        /// The RSA private key, PEM: PKCS#8 (`BEGIN PRIVATE KEY`) or
        /// PKCS#1 (`BEGIN RSA PRIVATE KEY`), unencrypted.
        private_key: SecretString,
        /// The JWT's `aud`: who the assertion is for, not where it is
        /// sent. [`Flow::PRODUCTION_AUDIENCE`] for a production org (also
        /// when logging in through its My Domain URL),
        /// [`Flow::SANDBOX_AUDIENCE`] for a sandbox, or an Experience
        /// Cloud site's URL.
        audience: String,
    },
    /// `grant_type=password`, the original system's flow
    /// (`SALESFORCE_USERNAME`, `SALESFORCE_PASSWORD`,
    /// `SALESFORCE_SECURITY_TOKEN`). Salesforce blocks it by default in
    /// orgs created since Summer '23 and is deprecating it; use it only
    /// where it is still allowed.
    Password {
        /// The app's consumer key.
        client_id: String,
        /// The app's consumer secret.
        client_secret: SecretString,
        /// The integration user.
        username: String,
        /// The user's password.
        password: SecretString,
        /// The user's security token (appended to the password).
        security_token: SecretString,
    },
}

impl Flow {
    /// The JWT bearer audience of a production org.
    pub const PRODUCTION_AUDIENCE: &str = "https://login.salesforce.com";
    /// The JWT bearer audience of a sandbox.
    pub const SANDBOX_AUDIENCE: &str = "https://test.salesforce.com";
}

/// Everything the adapter needs to know about the org.
#[derive(Debug, Clone)]
pub struct SalesforceConfig {
    /// Where tokens come from: the org's My Domain URL
    /// (`https://acme.my.salesforce.com`), `https://login.salesforce.com`,
    /// `https://test.salesforce.com` for a sandbox, or a local test server.
    /// API calls go to the `instance_url` the token answer names.
    pub login_url: String,
    /// The OAuth flow.
    pub flow: Flow,
    /// REST API version, `vNN.N`'s number (default `62.0`).
    pub api_version: String,
    /// The Lead field holding our lead id (an External ID field; default
    /// `Web_Lead_Id__c`): leads are upserted by it, so a repeat never
    /// makes a twin.
    pub lead_external_id: String,
    /// The Task field holding our follow-up id (an External ID field;
    /// default `Web_Task_Id__c`), for the same reason.
    pub task_external_id: String,
    /// Lead `Status` per stage (defaults: the standard picklist).
    pub stage_status: BTreeMap<Stage, String>,
    /// The share of the org's daily API calls (percent, default 5) left to
    /// its other integrations: once `Sforce-Limit-Info` says the org is
    /// that close to its limit, the client answers "rate limited" without
    /// calling for 15 minutes, then lets one call through to read the
    /// usage again.
    pub api_reserve_pct: u8,
    /// Whether a qualified lead (or one further on) also becomes an
    /// Opportunity (SPEC `create_deals`; default on: the org needs the
    /// External ID field `opportunity_external_id` on Opportunity).
    pub create_deals: bool,
    /// The Opportunity field holding our lead id (an External ID field;
    /// default `Web_Lead_Id__c`), so a lead has one Opportunity however
    /// often it is pushed.
    pub opportunity_external_id: String,
    /// Opportunity `StageName` per lead stage; a lead in a stage not
    /// listed gets no Opportunity (defaults: [`default_opportunity_stage`]).
    pub opportunity_stage: BTreeMap<Stage, String>,
    /// The stage a pulled Lead `Status` means (default: the standard
    /// picklist's two closed values, [`default_status_stage`]); a status
    /// not listed leaves the stage alone.
    pub status_stage: BTreeMap<String, Stage>,
}

impl SalesforceConfig {
    /// A config with the defaults for everything but where and how to log in.
    pub fn new(login_url: impl Into<String>, flow: Flow) -> Self {
        SalesforceConfig {
            login_url: login_url.into(),
            flow,
            api_version: "62.0".into(),
            lead_external_id: "Web_Lead_Id__c".into(),
            task_external_id: "Web_Task_Id__c".into(),
            stage_status: default_stage_status(),
            status_stage: default_status_stage(),
            api_reserve_pct: 5,
            create_deals: true,
            opportunity_external_id: "Web_Lead_Id__c".into(),
            opportunity_stage: default_opportunity_stage(),
        }
    }
}

/// The standard Lead Status picklist: open until contacted, working while
/// in progress, closed when won or given up.
pub fn default_stage_status() -> BTreeMap<Stage, String> {
    Stage::ALL
        .iter()
        .map(|stage| {
            let status = match stage {
                Stage::New => "Open - Not Contacted",
                Stage::Won => "Closed - Converted",
                Stage::Lost | Stage::Unqualified => "Closed - Not Converted",
                _ => "Working - Contacted",
            };
            (*stage, status.to_owned())
        })
        .collect()
}

/// What the standard Lead Status values mean as stages, where the meaning
/// is one stage: the closed ones. "Open - Not Contacted" and "Working -
/// Contacted" stand for several of our stages each (the push sends
/// "Working - Contacted" for contacted, qualified, proposal, negotiation
/// and nurturing), so reading them back would move leads by our own
/// pushes; map them per org when its picklist tells stages apart.
pub fn default_status_stage() -> BTreeMap<String, Stage> {
    [
        ("Closed - Converted", Stage::Won),
        ("Closed - Not Converted", Stage::Lost),
    ]
    .into_iter()
    .map(|(status, stage)| (status.to_owned(), stage))
    .collect()
}

/// The standard Opportunity stages for our stages from qualified on.
pub fn default_opportunity_stage() -> BTreeMap<Stage, String> {
    [
        (Stage::Qualified, "Qualification"),
        (Stage::Proposal, "Proposal/Price Quote"),
        (Stage::Negotiation, "Negotiation/Review"),
        (Stage::Won, "Closed Won"),
    ]
    .into_iter()
    .map(|(stage, name)| (stage, name.to_owned()))
    .collect()
}
