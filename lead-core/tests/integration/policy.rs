//! The policy file: every business rule tunable from TOML, defaults kept.

use lead_core::{Policy, RoutingStrategy};

#[test]
fn an_empty_policy_file_is_the_spec_default() {
    assert_eq!(Policy::from_toml("").unwrap(), Policy::default());
}

#[test]
fn the_default_policy_round_trips_through_toml() {
    let text = toml::to_string(&Policy::default()).unwrap();
    assert_eq!(Policy::from_toml(&text).unwrap(), Policy::default());
}

#[test]
fn a_partial_policy_overrides_only_what_it_names() {
    let policy = Policy::from_toml(
        r#"
        default_region = "ES"

        [bant]
        threshold = 2
        auto_qualify_enabled = true

        [routing]
        strategy = "round_robin"

        [behavior.decay]
        kind = "exponential"
        half_life_days = 7.0
        "#,
    )
    .unwrap();
    assert_eq!(policy.default_region.code(), "ES");
    assert_eq!(
        (policy.bant.threshold, policy.bant.auto_qualify_enabled),
        (2, true)
    );
    assert_eq!(
        policy.bant.timeline_horizon_days, 90,
        "unnamed fields keep their defaults"
    );
    assert_eq!(policy.routing.strategy, RoutingStrategy::RoundRobin);
    assert_eq!(policy.rules, Policy::default().rules);
}

#[test]
fn a_bad_policy_file_is_refused_with_a_reason() {
    let err = Policy::from_toml("default_region = \"Atlantis\"").unwrap_err();
    assert!(err.to_string().contains("Atlantis"), "{err}");
}
