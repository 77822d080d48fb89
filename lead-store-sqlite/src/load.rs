//! Rep workloads: a commit's or a batch's changes folded per rep
//! ([`lead_core::LoadDelta`]) and written as increments.

use sqlx::SqliteConnection;

use lead_core::{LoadChange, LoadDelta};

use crate::codec::micros;
use crate::error::StoreError;

type Fallible<T> = std::result::Result<T, StoreError>;

/// Applies workload changes folded per rep ([`LoadDelta`]), as increments
/// in SQL. `false` when a rep does not exist (the caller rolls back).
pub(crate) async fn write_load(
    conn: &mut SqliteConnection,
    changes: impl IntoIterator<Item = &LoadChange>,
) -> Fallible<bool> {
    for delta in LoadDelta::fold(changes) {
        let done = sqlx::query(
            "UPDATE reps SET open_leads = MAX(open_leads + ?1, ?2), \
             assigned_today = CASE WHEN ?3 IS NULL THEN assigned_today \
             WHEN ?4 AND today = ?3 THEN assigned_today + ?5 ELSE ?5 END, \
             today = COALESCE(?3, today), last_assigned_at = COALESCE(?6, last_assigned_at), \
             pass = MAX(pass, COALESCE(?7, pass)) WHERE id = ?8",
        )
        .bind(delta.open_add)
        .bind(delta.open_floor)
        .bind(delta.assigned.map(|a| a.day.to_string()))
        .bind(delta.assigned.is_some_and(|a| a.all_on_day))
        .bind(delta.assigned.map_or(0, |a| i64::from(a.on_day)))
        .bind(delta.assigned.map(|a| micros(a.last_at)))
        .bind(delta.pass)
        .bind(delta.rep.as_str())
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
    }
    Ok(true)
}
