//! Normalization, match keys and BANT on concrete inputs.

use lead_core::{
    BantConfig, BantLevel, DomainKind, Email, FieldMap, LeadFields, LeadInput, MatchKeys,
    NormalizeOptions, Region, normalize, timeline_days,
};

fn norm(input: LeadInput) -> lead_core::Result<LeadFields> {
    normalize(
        &input,
        &NormalizeOptions {
            default_region: Region::parse("ES").unwrap(),
        },
    )
}

#[test]
fn empty_strings_become_absent_and_text_is_trimmed() {
    let f = norm(LeadInput {
        email: Some("  a@b.com ".into()),
        company: Some("   ".into()),
        message: Some("  hola  ".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(f.company, None);
    assert_eq!(f.message.as_deref(), Some("hola"));
}

#[test]
fn names_are_title_cased_only_when_all_upper_or_all_lower() {
    let f = norm(LeadInput {
        email: Some("a@b.com".into()),
        first_name: Some("maría josé".into()),
        last_name: Some("O'NEIL-SMITH".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(f.first_name.as_deref(), Some("María José"));
    assert_eq!(f.last_name.as_deref(), Some("O'Neil-Smith"));
    let mixed = norm(LeadInput {
        email: Some("a@b.com".into()),
        last_name: Some("McDonald".into()),
        ..Default::default()
    });
    assert_eq!(mixed.unwrap().last_name.as_deref(), Some("McDonald"));
}

#[test]
fn phones_become_e164_in_the_default_region() {
    let f = norm(LeadInput {
        email: Some("a@b.com".into()),
        phone: Some("612-345-678".into()),
        ..Default::default()
    });
    assert_eq!(f.unwrap().phone.unwrap().as_str(), "+34612345678");
}

#[test]
fn urls_sizes_budgets_and_consent_are_parsed() {
    let f = norm(LeadInput {
        email: Some("a@b.com".into()),
        website: Some("WWW.Acme.com/about".into()),
        landing_page: Some("HTTPS://tuweb.com/landing?utm=x".into()),
        company_size: Some("1,000-4,999".into()),
        budget: Some("€20k".into()),
        consent_marketing: Some("yes".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(f.website.as_deref(), Some("https://www.acme.com/about"));
    assert_eq!(
        f.landing_page.as_deref(),
        Some("https://tuweb.com/landing?utm=x")
    );
    assert_eq!(f.company_size, Some(1000));
    assert_eq!(f.budget.map(|b| b.to_string()).as_deref(), Some("20000"));
    assert_eq!(f.consent_marketing, Some(true));
}

#[test]
fn only_the_email_is_refused_and_every_other_bad_field_is_kept_by_name() {
    let odd = LeadInput {
        website: Some("javascript:alert(1)".into()),
        company_size: Some("lots".into()),
        consent_marketing: Some("maybe".into()),
        ..Default::default()
    };
    let err = norm(odd.clone()).unwrap_err();
    let lead_core::Error::Invalid { fields } = err else {
        panic!("expected Invalid")
    };
    let names: Vec<(&str, &str)> = fields
        .iter()
        .map(|f| (f.field.as_str(), f.code.as_str()))
        .collect();
    assert_eq!(names, [("email", "required")]);

    let kept = norm(LeadInput {
        email: Some("ana@acme.com".into()),
        ..odd
    })
    .expect("stored with warnings");
    let names: Vec<(&str, &str, Option<&str>)> = kept
        .warnings
        .iter()
        .map(|w| (w.field.as_str(), w.code.as_str(), w.value.as_deref()))
        .collect();
    assert_eq!(
        names,
        [
            ("website", "invalid_url", Some("javascript:alert(1)")),
            ("company_size", "invalid_number", Some("lots")),
            ("consent_marketing", "invalid_bool", Some("maybe"))
        ]
    );
    assert_eq!(
        (kept.website, kept.company_size, kept.consent_marketing),
        (None, None, None)
    );
}

#[test]
fn text_over_the_limit_is_cut_and_kept_whole_in_a_warning() {
    let long = "ñ".repeat(lead_core::MAX_FIELD_LEN); // two bytes each
    let kept = norm(LeadInput {
        email: Some("ana@acme.com".into()),
        message: Some(long.clone()),
        ..Default::default()
    })
    .expect("stored");
    let message = kept.message.expect("the start is kept");
    assert!(message.len() <= lead_core::MAX_FIELD_LEN);
    assert!(long.starts_with(&message), "cut on a character boundary");
    assert_eq!(kept.warnings[0].code, "too_long");
    assert_eq!(kept.warnings[0].value.as_deref(), Some(long.as_str()));
}

#[test]
fn emails_need_a_real_public_suffix() {
    assert!(Email::parse("user@localhost").is_err());
    assert!(Email::parse("user@example.notatld").is_err());
    assert!(Email::parse("user@example.co.uk").is_ok());
}

#[test]
fn the_field_map_understands_other_form_tools_and_keeps_unknown_fields() {
    let json = serde_json::json!({
        "Email Address": "ana@acme.com",
        "FNAME": "Ana",
        "your-phone": "+34612345678",
        "metadata": {"campaign_id": 7},
        "hs_context": {"pageUrl": "x"},
        "Favourite Colour": "red"
    });
    let map = FieldMap::default()
        .with_alias("Favourite Colour", "industry")
        .unwrap();
    let input = LeadInput::from_fields(json.as_object().unwrap().clone(), &map);
    assert_eq!(input.email.as_deref(), Some("ana@acme.com"));
    assert_eq!(input.first_name.as_deref(), Some("Ana"));
    assert_eq!(input.phone.as_deref(), Some("+34612345678"));
    assert_eq!(input.industry.as_deref(), Some("red"));
    assert_eq!(input.metadata["campaign_id"], 7);
    assert_eq!(input.metadata["hs_context"]["pageUrl"], "x");
    assert!(FieldMap::default().with_alias("x", "not_a_field").is_err());
}

#[test]
fn the_standard_field_map_is_the_default_one_built_once() {
    assert_eq!(FieldMap::standard(), &FieldMap::default());
    assert!(std::ptr::eq(FieldMap::standard(), FieldMap::standard()));
    assert_eq!(
        FieldMap::standard().canonical("Email Address"),
        Some("email")
    );
}

#[test]
fn match_keys_fold_aliases_domains_and_names() {
    let mut f = LeadFields::new(Email::parse("J.O.H.N+promo@gmail.com").unwrap());
    f.first_name = Some("Jöhn".into());
    f.last_name = Some("Smyth".into());
    f.company = Some("The Acme Company, S.L.".into());
    let k = MatchKeys::of(&f);
    assert_eq!(k.email, "john@gmail.com");
    assert_eq!(k.domain_kind, DomainKind::FreeMail);
    assert_eq!(k.corporate_domain(), None);
    assert_eq!(k.first_name.as_deref(), Some("john"));
    assert_eq!(k.company_key().as_deref(), Some("acme"));
    let smith = lead_core::phonetic("smith");
    assert_eq!(
        k.last_name_phonetic.unwrap().0,
        smith.0,
        "Smyth sounds like Smith"
    );
}

#[test]
fn bant_collects_evidence_per_letter() {
    let mut f = LeadFields::new(Email::parse("ana@acme.com").unwrap());
    f.job_title = Some("Head of Operations".into());
    f.message = Some("Buscamos una solución".into());
    let b = BantConfig::default().evaluate(&f, &[]);
    assert!(b.authority.met && b.need.met && !b.budget.met && !b.timeline.met);
    assert_eq!(b.level, BantLevel::Moderately);
    assert!(!b.qualified);
    assert!(b.authority.evidence.unwrap().contains("Head of Operations"));

    f.job_title = Some("Project Coordinator".into());
    assert!(
        !BantConfig::default().evaluate(&f, &[]).authority.met,
        "not a decision-making title"
    );
    f.job_title = Some("MVP".into());
    assert!(
        !BantConfig::default().evaluate(&f, &[]).authority.met,
        "`vp` must match whole words only"
    );
}

#[test]
fn timelines_are_read_in_english_and_spanish() {
    assert_eq!(timeline_days("ASAP"), Some(7));
    assert_eq!(timeline_days("within 2 weeks"), Some(14));
    assert_eq!(timeline_days("6 months"), Some(180));
    assert_eq!(timeline_days("en 3 meses"), Some(90));
    assert_eq!(timeline_days("this quarter"), Some(90));
    assert_eq!(timeline_days("no idea"), None);
    assert_eq!(
        timeline_days("I don't know yet"),
        None,
        "`know` is not `now`"
    );
    assert_eq!(timeline_days("Immediately"), Some(7));
}

#[test]
fn a_nul_character_is_dropped_from_every_field_it_appears_in_with_a_warning() {
    let input = LeadInput {
        email: Some("ana@acme.com".into()),
        first_name: Some("A\u{0}na".into()),
        phone: Some("+34 612\u{0}345678".into()),
        message: Some("hi\u{0}".into()),
        job_title: Some("CEO".into()),
        ..Default::default()
    };
    let kept = normalize(&input, &NormalizeOptions::default()).expect("stored");
    let named: Vec<(&str, &str)> = kept
        .warnings
        .iter()
        .map(|f| (f.field.as_str(), f.code.as_str()))
        .collect();
    assert_eq!(
        named,
        [
            ("first_name", "invalid_character"),
            ("phone", "invalid_character"),
            ("message", "invalid_character")
        ],
        "each field once: the phone parses once the NUL is gone"
    );
    assert_eq!(kept.first_name.as_deref(), Some("Ana"));
    assert_eq!(
        kept.phone.map(|p| p.to_string()).as_deref(),
        Some("+34612345678")
    );
    assert_eq!(kept.message.as_deref(), Some("hi"));
    // The identity is not guessed at.
    let email = LeadInput {
        email: Some("a\u{0}na@acme.com".into()),
        ..Default::default()
    };
    assert!(normalize(&email, &NormalizeOptions::default()).is_err());
    assert!(lead_core::check_text("notes", "tab\tis fine").is_ok());
}

#[test]
fn a_submission_cannot_pass_off_its_own_values_as_the_leads_history() {
    let mut input = LeadInput {
        email: Some("ana@acme.com".into()),
        ..Default::default()
    };
    input.metadata.insert(
        "alternate_emails".into(),
        serde_json::json!(["ceo@victim.com"]),
    );
    input.metadata.insert(
        "alternate_values".into(),
        serde_json::json!({"phone": ["+1"]}),
    );
    input.metadata.insert("plan".into(), "pro".into());
    let kept = normalize(&input, &NormalizeOptions::default()).expect("stored");
    assert!(kept.metadata.get("alternate_emails").is_none());
    assert!(kept.metadata.get("alternate_values").is_none());
    assert_eq!(kept.metadata["plan"], "pro", "other metadata stays");
    let reserved: Vec<(&str, &str)> = kept
        .warnings
        .iter()
        .map(|w| (w.field.as_str(), w.code.as_str()))
        .collect();
    assert_eq!(
        reserved,
        [
            ("metadata.alternate_emails", "reserved_key"),
            ("metadata.alternate_values", "reserved_key")
        ]
    );
    assert!(
        kept.warnings[0]
            .value
            .as_deref()
            .is_some_and(|v| v.contains("ceo@victim.com")),
        "what was sent is kept in the warning"
    );
}
