#![doc = include_str!("../README.md")]

/// The owner of an account: the rep of its newest open (not won, lost or
/// unqualified: `Stage::is_open`), assigned, unmerged lead, by company key
/// (placeholder `$company`) or corporate domain (`$domain`). One branch per
/// key, each walking its partial index in order and stopping at the first
/// open lead; the newer of the two wins.
macro_rules! owner_query {
    ($company:literal, $domain:literal) => {
        concat!(
            "SELECT assigned_to FROM ( \
             SELECT * FROM (SELECT assigned_to, updated_at, ext_id FROM leads \
             WHERE merged_into IS NULL AND assigned_to IS NOT NULL AND company_key IS NOT NULL \
             AND company_key = ",
            $company,
            " AND stage NOT IN ('won', 'lost', 'unqualified') \
             ORDER BY updated_at DESC, ext_id DESC LIMIT 1) AS by_company \
             UNION ALL \
             SELECT * FROM (SELECT assigned_to, updated_at, ext_id FROM leads \
             WHERE merged_into IS NULL AND assigned_to IS NOT NULL AND corporate_domain IS NOT NULL \
             AND corporate_domain = ",
            $domain,
            " AND stage NOT IN ('won', 'lost', 'unqualified') \
             ORDER BY updated_at DESC, ext_id DESC LIMIT 1) AS by_domain \
             ) AS owners ORDER BY updated_at DESC, ext_id DESC LIMIT 1"
        )
    };
}

mod bulk;
mod codec;
mod config;
mod context;
mod error;
mod held;
mod leads;
mod queue;
mod store;

pub use config::{GroupCommit, PostgresConfig};
pub use store::PostgresStore;
