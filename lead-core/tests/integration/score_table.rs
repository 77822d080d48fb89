//! SPEC "Rule scoring": every row of the table, the channel derivation and
//! the priority thresholds, table-driven.

use lead_core::{
    Channel, Email, LeadFields, Priority, PriorityThresholds, RuleSet, Score, channel_of,
};

/// A lead that scores 0: the source is given but says nothing known, so
/// the channel is unknown and no source-quality points are added.
fn zero_lead() -> LeadFields {
    let mut f = LeadFields::new(Email::parse("someone@example.com").unwrap());
    f.source = Some("zzz-unrecognised".into());
    f
}

#[test]
fn the_baseline_lead_scores_zero() {
    assert_eq!(RuleSet::default().score(&zero_lead()).score.value(), 0);
}

#[test]
fn every_row_of_the_spec_table_adds_its_points() {
    type Setter = fn(&mut LeadFields);
    let rows: &[(&str, Setter, u8)] = &[
        (
            "full name (first and last)",
            |f| {
                f.first_name = Some("Juan".into());
                f.last_name = Some("Pérez".into());
            },
            10,
        ),
        (
            "first name only is not a full name",
            |f| f.first_name = Some("Juan".into()),
            0,
        ),
        (
            "last name only is not a full name",
            |f| f.last_name = Some("Pérez".into()),
            0,
        ),
        (
            "phone",
            |f| {
                f.phone = Some(lead_core::Phone::parse("+34612345678", Default::default()).unwrap())
            },
            10,
        ),
        ("company", |f| f.company = Some("Mi Empresa SL".into()), 10),
        ("message", |f| f.message = Some("Interesado".into()), 10),
        (
            "utm_campaign",
            |f| f.utm_campaign = Some("summer_2024".into()),
            10,
        ),
        (
            "utm_source (unrecognised channel)",
            |f| f.utm_source = Some("newsletter-x".into()),
            5,
        ),
        (
            "utm_medium (unrecognised channel)",
            |f| f.utm_medium = Some("qr-code".into()),
            5,
        ),
        ("channel organic", |f| f.source = Some("organic".into()), 10),
        ("channel seo", |f| f.source = Some("seo".into()), 10),
        ("channel direct", |f| f.source = Some("direct".into()), 10),
        (
            "channel web is direct",
            |f| f.source = Some("web".into()),
            10,
        ),
        (
            "channel referral",
            |f| f.source = Some("referral".into()),
            10,
        ),
        ("channel paid", |f| f.source = Some("paid".into()), 5),
        ("channel social", |f| f.source = Some("linkedin".into()), 5),
        (
            "landing_page",
            |f| f.landing_page = Some("https://tuweb.com/landing".into()),
            5,
        ),
    ];
    for (name, set, points) in rows {
        let mut f = zero_lead();
        set(&mut f);
        let got = RuleSet::default().score(&f);
        assert_eq!(got.score.value(), *points, "row `{name}`: {:?}", got.hits);
        assert_eq!(
            got.hits.iter().map(|h| h.points).sum::<i32>(),
            i32::from(*points),
            "breakdown of `{name}`"
        );
    }
}

#[test]
fn the_original_example_lead_scores_as_the_seed_says() {
    // The seed's example request: name, phone, company, message, three UTMs
    // (utm_medium=cpc makes the channel paid) and a landing page.
    let mut f = zero_lead();
    f.first_name = Some("Juan".into());
    f.last_name = Some("Pérez".into());
    f.phone = Some(lead_core::Phone::parse("+34612345678", Default::default()).unwrap());
    f.company = Some("Mi Empresa SL".into());
    f.source = Some("web".into());
    f.message = Some("Interesado en conocer más sobre el producto".into());
    f.utm_source = Some("google".into());
    f.utm_campaign = Some("summer_2024".into());
    f.utm_medium = Some("cpc".into());
    f.landing_page = Some("https://tuweb.com/landing".into());
    let s = RuleSet::default().score(&f);
    assert_eq!(s.score.value(), 40 + 20 + 5 + 5);
    assert_eq!(
        PriorityThresholds::default().priority(s.score),
        Priority::High
    );
}

#[test]
fn channel_derivation_follows_the_spec() {
    /// (source, utm_medium, utm_source) and the channel they give.
    type Case = (
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Channel,
    );
    let cases: &[Case] = &[
        // (source, utm_medium, utm_source, channel)
        (None, Some("cpc"), None, Channel::Paid),
        (None, Some("ppc"), None, Channel::Paid),
        (Some("paid"), None, None, Channel::Paid),
        (None, Some("display"), None, Channel::Paid),
        (Some("facebook ads"), None, None, Channel::Paid),
        (Some("facebook"), None, None, Channel::Social),
        (None, None, Some("linkedin"), Channel::Social),
        (None, Some("social"), None, Channel::Social),
        (Some("organic"), None, None, Channel::Organic),
        (None, Some("seo"), None, Channel::Organic),
        (Some("direct"), None, None, Channel::Direct),
        (Some("web"), None, None, Channel::Direct),
        (None, None, None, Channel::Direct),
        (Some("referral"), None, None, Channel::Referral),
        (Some("partner-site"), None, None, Channel::Unknown),
        (None, None, Some("google"), Channel::Unknown),
        // utm_medium is the most specific and is read first.
        (Some("web"), Some("cpc"), Some("google"), Channel::Paid),
        (Some("linkedin"), Some("cpc"), None, Channel::Paid),
        // an unknown medium does not hide a known source
        (Some("organic"), Some("qr"), None, Channel::Organic),
    ];
    for (source, medium, utm_source, want) in cases {
        let mut f = LeadFields::new(Email::parse("a@example.com").unwrap());
        f.source = source.map(Into::into);
        f.utm_medium = medium.map(Into::into);
        f.utm_source = utm_source.map(Into::into);
        assert_eq!(
            channel_of(&f),
            *want,
            "source={source:?} medium={medium:?} utm_source={utm_source:?}"
        );
    }
}

#[test]
fn a_referrer_without_source_is_a_referral() {
    let mut f = LeadFields::new(Email::parse("a@example.com").unwrap());
    f.metadata
        .insert("referrer".into(), "https://blog.example.org/post".into());
    assert_eq!(channel_of(&f), Channel::Referral);
}

#[test]
fn priority_thresholds_are_70_and_40() {
    let t = PriorityThresholds::default();
    for (score, want) in [
        (100, Priority::High),
        (70, Priority::High),
        (69, Priority::Medium),
        (40, Priority::Medium),
        (39, Priority::Low),
        (0, Priority::Low),
    ] {
        assert_eq!(t.priority(Score::clamped(score)), want, "score {score}");
    }
}

#[test]
fn group_caps_limit_points_and_the_total_is_clamped() {
    let rules = RuleSet::from_toml(
        r#"
        [[group]]
        name = "big"
        cap = 15
        [[group.rule]]
        id = "a"
        points = 10
        when = { present = "phone" }
        [[group.rule]]
        id = "b"
        points = 10
        when = { present = "company" }

        [[group]]
        name = "huge"
        [[group.rule]]
        id = "c"
        points = 500
        when = { present = "company" }
        "#,
    )
    .unwrap();
    let mut f = zero_lead();
    f.phone = Some(lead_core::Phone::parse("+34612345678", Default::default()).unwrap());
    f.company = Some("Acme".into());
    let s = rules.score(&f);
    let points: Vec<i32> = s.hits.iter().map(|h| h.points).collect();
    assert_eq!(points, [10, 5, 500]);
    assert_eq!(s.score.value(), 100);
}

#[test]
fn the_shipped_default_rules_file_is_the_default_set() {
    let text = include_str!("../../rules/default.toml");
    assert_eq!(RuleSet::from_toml(text).unwrap(), RuleSet::default());
}

#[test]
fn custom_rules_read_metadata_domains_and_numbers() {
    let rules = RuleSet::from_json(
        r#"{"groups": [{"name": "fit", "rules": [
            {"id": "corporate", "points": 15, "when": {"email_domain": "corporate"}},
            {"id": "enterprise", "points": 20, "when": {"at_least": {"field": "company_size", "value": 1000}}},
            {"id": "senior", "points": 10, "when": {"contains": {"field": "job_title", "any": ["vp", "chief"]}}},
            {"id": "plan", "points": 7, "when": {"one_of": {"field": "metadata.plan", "values": ["Enterprise"]}}},
            {"id": "not_student", "points": -5, "when": {"not": {"present": "company"}}}
        ]}]}"#,
    )
    .unwrap();
    let mut f = LeadFields::new(Email::parse("cfo@bigcorp.com").unwrap());
    f.company_size = Some(5000);
    f.job_title = Some("Chief Financial Officer".into());
    f.metadata.insert("plan".into(), "enterprise".into());
    assert_eq!(rules.score(&f).score.value(), 15 + 20 + 10 + 7 - 5);
    assert!(
        RuleSet::from_json(
            r#"{"groups":[{"name":"x","rules":[{"id":"y","points":1,"when":{"present":"nope"}}]}]}"#
        )
        .is_err()
    );
}
