//! Properties of scoring that must hold for every input.

use chrono::{Duration, TimeZone, Utc};
use lead_core::{
    BehaviorConfig, Condition, Decay, Email, EventKind, Field, LeadEvent, LeadFields, LeadInput,
    NormalizeOptions, Rule, RuleGroup, RuleSet, normalize,
};
use proptest::prelude::*;

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[ a-zA-Z0-9_./:-]{0,24}")
}

prop_compose! {
    fn arb_fields()(
        first in opt_text(), last in opt_text(), company in opt_text(), message in opt_text(),
        source in opt_text(), medium in opt_text(), utm_source in opt_text(), campaign in opt_text(),
        landing in opt_text(), size in prop::option::of(0u32..100_000),
    ) -> LeadFields {
        let mut f = LeadFields::new(Email::parse("someone@example.com").unwrap());
        f.first_name = first;
        f.last_name = last;
        f.company = company;
        f.message = message;
        f.source = source;
        f.utm_medium = medium;
        f.utm_source = utm_source;
        f.utm_campaign = campaign;
        f.landing_page = landing;
        f.company_size = size;
        f
    }
}

fn arb_rules() -> impl Strategy<Value = RuleSet> {
    let field = prop::sample::select(vec![
        "phone",
        "company",
        "message",
        "company_size",
        "utm_source",
        "landing_page",
    ]);
    let rule = (field, -200i32..200).prop_map(|(f, points)| Rule {
        id: f.into(),
        points,
        when: Condition::Present(f.parse::<Field>().unwrap()),
    });
    let group = (
        prop::collection::vec(rule, 0..6),
        prop::option::of(0i32..150),
    )
        .prop_map(|(rules, cap)| RuleGroup {
            name: "g".into(),
            cap,
            rules,
        });
    prop::collection::vec(group, 0..5).prop_map(|groups| RuleSet { groups })
}

proptest! {
    #[test]
    fn the_default_score_is_always_between_0_and_100(f in arb_fields()) {
        let s = RuleSet::default().score(&f);
        prop_assert!(s.score.value() <= 100);
        prop_assert!(s.score.value() <= 75, "the default table cannot exceed 40+20+10+5");
    }

    #[test]
    fn any_rule_set_scores_between_0_and_100(f in arb_fields(), rules in arb_rules()) {
        prop_assert!(rules.score(&f).score.value() <= 100);
    }

    #[test]
    fn decay_never_increases_with_age(
        a in -10.0f64..400.0, b in -10.0f64..400.0, days in 0.1f64..365.0, half_life in 0.1f64..365.0,
    ) {
        let (young, old) = if a <= b { (a, b) } else { (b, a) };
        for decay in [Decay::Linear { days }, Decay::Exponential { half_life_days: half_life }] {
            let (fy, fo) = (decay.factor(young), decay.factor(old));
            prop_assert!(fo <= fy, "{decay:?}: factor({old}) = {fo} > factor({young}) = {fy}");
            prop_assert!((0.0..=1.0).contains(&fy));
        }
    }

    #[test]
    fn behavioral_score_is_capped_and_falls_as_time_passes(
        kinds in prop::collection::vec(0usize..7, 0..60),
        ages in prop::collection::vec(0i64..60, 60),
        later in 0i64..40,
    ) {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
        let events: Vec<LeadEvent> = kinds.iter().zip(&ages).map(|(k, age)| LeadEvent {
            kind: EventKind::ALL[*k], at: now - Duration::days(*age), properties: Default::default(),
        }).collect();
        let config = BehaviorConfig::default();
        let today = config.score(&events, now).score.value();
        let afterwards = config.score(&events, now + Duration::days(later)).score.value();
        prop_assert!(today <= 100);
        prop_assert!(afterwards <= today);
    }

    #[test]
    fn normalization_never_panics_and_names_fields(
        email in ".{0,40}", phone in ".{0,20}", site in ".{0,30}", size in ".{0,10}", budget in ".{0,10}",
    ) {
        let input = LeadInput {
            email: Some(email), phone: Some(phone), website: Some(site), company_size: Some(size),
            budget: Some(budget), ..Default::default()
        };
        if let Err(lead_core::Error::Invalid { fields }) = normalize(&input, &NormalizeOptions::default()) {
            prop_assert!(!fields.is_empty());
            for f in fields {
                prop_assert!(["email", "phone", "website", "company_size", "budget"].contains(&f.field.as_str()));
            }
        }
    }
}
