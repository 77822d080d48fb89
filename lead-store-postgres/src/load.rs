//! Rep workloads: a batch's changes folded per rep
//! ([`lead_core::LoadDelta`]) and written as increments in one statement
//! ([`load_update!`]), alone or inside the batch statement of
//! [`crate::bulk`].

use sqlx::{PgConnection, Postgres};

use lead_core::{LoadChange, LoadDelta};

use crate::codec::micros;
use crate::error::StoreError;

type Fallible<T> = std::result::Result<T, StoreError>;

/// A batch's workload changes folded per rep ([`LoadDelta`]), one array
/// per column of [`load_update!`].
#[derive(Debug, Default)]
pub(crate) struct LoadColumns {
    ids: Vec<String>,
    add: Vec<i64>,
    floor: Vec<i64>,
    day: Vec<Option<String>>,
    all_on_day: Vec<bool>,
    on_day: Vec<i64>,
    last_at: Vec<Option<i64>>,
    pass: Vec<Option<f64>>,
}

impl LoadColumns {
    pub(crate) fn of<'a>(changes: impl IntoIterator<Item = &'a LoadChange>) -> Self {
        let mut columns = Self::default();
        for delta in LoadDelta::fold(changes) {
            columns.ids.push(delta.rep.as_str().to_owned());
            columns.add.push(delta.open_add);
            columns.floor.push(delta.open_floor);
            columns.day.push(delta.assigned.map(|a| a.day.to_string()));
            columns
                .all_on_day
                .push(delta.assigned.is_some_and(|a| a.all_on_day));
            columns
                .on_day
                .push(delta.assigned.map_or(0, |a| i64::from(a.on_day)));
            columns
                .last_at
                .push(delta.assigned.map(|a| micros(a.last_at)));
            columns.pass.push(delta.pass);
        }
        columns
    }

    /// How many reps the changes touch.
    pub(crate) fn reps(&self) -> usize {
        self.ids.len()
    }

    /// Binds the arrays, in [`load_update!`]'s order, after what `query` has.
    pub(crate) fn bind<'q>(self, query: PgQuery<'q>) -> PgQuery<'q> {
        query
            .bind(self.ids)
            .bind(self.add)
            .bind(self.floor)
            .bind(self.day)
            .bind(self.all_on_day)
            .bind(self.on_day)
            .bind(self.last_at)
            .bind(self.pass)
    }
}

/// A query being built.
pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// Applies workload changes in one statement, as increments over the
/// stored rows so concurrent commits from any instance add up. `false`
/// when a rep does not exist (the caller rolls back).
pub(crate) async fn write_load(
    conn: &mut PgConnection,
    changes: impl IntoIterator<Item = &LoadChange>,
) -> Fallible<bool> {
    let columns = LoadColumns::of(changes);
    let reps = columns.reps();
    if reps == 0 {
        return Ok(true);
    }
    let done = columns
        .bind(sqlx::query(load_update!(
            "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8"
        )))
        .execute(&mut *conn)
        .await?;
    Ok(usize::try_from(done.rows_affected()).ok() == Some(reps))
}
