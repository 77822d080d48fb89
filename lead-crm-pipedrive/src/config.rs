//! Where the company is and how the adapter maps our leads onto it.

use std::collections::BTreeMap;

use lead_core::Stage;
use secrecy::SecretString;

/// Everything the adapter needs to know about the Pipedrive company.
#[derive(Debug, Clone)]
pub struct PipedriveConfig {
    /// The company's base URL (`https://acme.pipedrive.com`), or a proxy
    /// or local test server; `/api/v1/…` and `/api/v2/…` go under it.
    pub base_url: String,
    /// The API token (`x-api-token`); never shown in `Debug` or errors.
    pub api_token: SecretString,
    /// The stage new deals go to (`PIPEDRIVE_DEFAULT_STAGE_ID`); without
    /// it, Pipedrive puts them in the first stage of its default pipeline.
    pub default_stage_id: Option<u64>,
    /// Whether qualified leads also become deals (SPEC `create_deals`):
    /// a lead reaching one of [`DEAL_STAGES`] is converted to a deal.
    pub create_deals: bool,
    /// The Pipedrive stage id per open stage of ours (qualified, proposal,
    /// negotiation): the push moves the deal there, the pull reads a deal
    /// in that stage as ours. Pipedrive stages listed for two of our
    /// stages are not read back (they would move leads by our own
    /// pushes). Empty by default: deals stay where people put them.
    pub stage_ids: BTreeMap<Stage, u64>,
    /// The prefix of the `origin_id` Pipedrive leads are created with
    /// (`lead-capture:WEB-7KQ2M9XA`, with our lead id), so people see
    /// where they came from, and a lead created before a crash is found
    /// again rather than made twice.
    pub origin_id: String,
}

/// Our stages at which a lead becomes a Pipedrive deal (with
/// [`PipedriveConfig::create_deals`]): the ones SPEC calls qualified or
/// further on.
pub const DEAL_STAGES: [Stage; 4] = [
    Stage::Qualified,
    Stage::Proposal,
    Stage::Negotiation,
    Stage::Won,
];

impl PipedriveConfig {
    /// A config for the company `domain` (`acme` of `acme.pipedrive.com`).
    pub fn for_company(domain: &str, api_token: SecretString) -> Self {
        PipedriveConfig::new(format!("https://{domain}.pipedrive.com"), api_token)
    }

    /// A config for a whole base URL (a proxy, a local test server).
    pub fn new(base_url: impl Into<String>, api_token: SecretString) -> Self {
        PipedriveConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_token,
            default_stage_id: None,
            create_deals: true,
            stage_ids: BTreeMap::new(),
            origin_id: "lead-capture".into(),
        }
    }

    /// Our stage for a deal in the Pipedrive stage `id`, when only one
    /// of ours maps there.
    pub(crate) fn stage_of(&self, id: u64) -> Option<Stage> {
        let mut ours = self.stage_ids.iter().filter(|(_, v)| **v == id);
        match (ours.next(), ours.next()) {
            (Some((stage, _)), None) => Some(*stage),
            _ => None,
        }
    }
}
