//! Dry runs: route a sequence of leads against a copy of the state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{RoutingConfig, RoutingDecision, RoutingRequest, route};
use crate::model::{RepId, RepState};

/// The result of [`route_many`]: each decision, and the state after all of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingSimulation {
    /// One decision per request, in order.
    pub decisions: Vec<RoutingDecision>,
    /// The reps' state after every assignment was applied.
    pub final_state: Vec<RepState>,
}

impl RoutingSimulation {
    /// Leads per rep (reps that got none are absent), in rep-id order.
    pub fn assigned_counts(&self) -> BTreeMap<RepId, usize> {
        let mut counts = BTreeMap::new();
        for id in self.decisions.iter().filter_map(|d| d.assigned.as_ref()) {
            *counts.entry(id.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// How many leads stayed unassigned.
    pub fn unassigned(&self) -> usize {
        self.decisions
            .iter()
            .filter(|d| d.assigned.is_none())
            .count()
    }
}

/// Routes `requests` one after the other, each against the state left by
/// the previous assignments, without touching `reps`: a dry run of a
/// configuration change, a replay of yesterday's leads, or a fairness test.
///
/// Leads are never closed during a simulation (no [`super::release_lead`]),
/// so open-lead capacities fill up as they would within one busy day.
pub fn route_many<'a>(
    config: &RoutingConfig,
    reps: &[RepState],
    requests: impl IntoIterator<Item = RoutingRequest<'a>>,
) -> RoutingSimulation {
    let mut state = reps.to_vec();
    let decisions = requests
        .into_iter()
        .map(|request| {
            let decision = route(config, &state, &request);
            decision.apply(&mut state);
            decision
        })
        .collect();
    RoutingSimulation {
        decisions,
        final_state: state,
    }
}
