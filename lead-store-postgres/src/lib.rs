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

/// Rep workloads, folded per rep ([`lead_core::LoadDelta`]), as increments
/// over the stored rows in one UPDATE: the placeholders are the eight
/// arrays [`crate::load::LoadColumns`] binds, in its order (rep ids first).
macro_rules! load_update {
    ($ids:literal, $add:literal, $floor:literal, $day:literal, $all_on_day:literal,
     $on_day:literal, $last_at:literal, $pass:literal) => {
        concat!(
            "UPDATE reps SET open_leads = GREATEST(reps.open_leads + t.open_add, t.open_floor), \
             assigned_today = CASE WHEN t.day IS NULL THEN reps.assigned_today \
             WHEN t.all_on_day AND reps.today = t.day::date THEN reps.assigned_today + t.on_day \
             ELSE t.on_day END, \
             today = COALESCE(t.day::date, reps.today), \
             last_assigned_at = COALESCE(t.last_at, reps.last_assigned_at), \
             pass = GREATEST(reps.pass, COALESCE(t.pass, reps.pass)) \
             FROM UNNEST(",
            $ids, "::text[], ", $add, "::int8[], ", $floor, "::int8[], ", $day, "::text[], ",
            $all_on_day, "::bool[], ", $on_day, "::int8[], ", $last_at, "::int8[], ", $pass,
            "::float8[]) AS t(id, open_add, open_floor, day, all_on_day, on_day, last_at, pass) \
             WHERE reps.id = t.id"
        )
    };
}

mod bulk;
mod codec;
mod commit;
mod config;
mod context;
mod error;
mod held;
mod jobs;
mod leads;
mod load;
mod queue;
mod store;

pub use config::{GroupCommit, PostgresConfig, url_with_database};
pub use store::PostgresStore;
