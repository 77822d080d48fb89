//! The original system's routing metrics, in Prometheus form
//! (`sales_routing.assigned` → `sales_routing_assigned_total`).

/// A lead got a rep: a first assignment counts in
/// `sales_routing_assigned_total`, a change of rep in
/// `sales_routing_reassigned_total`.
pub(crate) fn assigned(had_a_rep: bool) {
    if had_a_rep {
        metrics::counter!("sales_routing_reassigned_total").increment(1);
    } else {
        metrics::counter!("sales_routing_assigned_total").increment(1);
    }
}

/// Registers the counters at zero, so `/metrics` names them before the
/// first assignment (a dashboard can tell "none yet" from "not measured").
pub(crate) fn describe() {
    metrics::describe_counter!(
        "sales_routing_assigned_total",
        "Leads assigned to a rep (at capture, by routing or by hand)"
    );
    metrics::describe_counter!(
        "sales_routing_reassigned_total",
        "Leads moved from one rep to another"
    );
    metrics::counter!("sales_routing_assigned_total").increment(0);
    metrics::counter!("sales_routing_reassigned_total").increment(0);
}
