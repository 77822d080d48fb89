//! Where the company is and how the adapter maps our leads onto it.

use secrecy::SecretString;

/// Everything the adapter needs to know about the Pipedrive company.
#[derive(Debug, Clone)]
pub struct PipedriveConfig {
    /// The company's base URL (`https://acme.pipedrive.com`), or a proxy
    /// or local test server; `/api/v1/…` and `/api/v2/…` go under it.
    pub base_url: String,
    /// The API token (`x-api-token`); never shown in `Debug` or errors.
    pub api_token: SecretString,
    /// The stage new deals go to (`PIPEDRIVE_DEFAULT_STAGE_ID`).
    pub default_stage_id: Option<u64>,
    /// Whether qualified leads also become deals (SPEC `create_deals`).
    pub create_deals: bool,
    /// The `origin_id` Pipedrive leads are created with, so people see
    /// where they came from.
    pub origin_id: String,
}

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
            origin_id: "lead-capture".into(),
        }
    }
}
