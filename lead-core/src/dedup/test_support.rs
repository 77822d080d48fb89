//! Leads for tests: a plain builder and a proptest strategy.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::scoring::{BantLetter, BantLevel, BantResult, RuleHit};
use crate::{
    ChangeOrigin, CrmKind, CrmLink, Email, EventKind, Lead, LeadEvent, LeadExtId, LeadFields,
    Phone, Priority, Region, RepId, Score, Stage, StageChange,
};

/// A lead with only the id, e-mail and times set; everything else empty.
pub(crate) fn lead(ext_id: &str, email: &str, created_at: DateTime<Utc>) -> Lead {
    from_fields(
        LeadExtId::parse(ext_id).expect("valid test ext_id"),
        LeadFields::new(Email::parse(email).expect("valid test e-mail")),
        created_at,
    )
}

/// A lead around `fields`, new, unscored.
pub(crate) fn from_fields(
    ext_id: LeadExtId,
    fields: LeadFields,
    created_at: DateTime<Utc>,
) -> Lead {
    Lead {
        ext_id,
        fields,
        score: Score::MIN,
        priority: Priority::Low,
        score_breakdown: Vec::new(),
        stage: Stage::New,
        assigned_to: None,
        estimated_value: None,
        currency: None,
        probability_pct: 5,
        segments: Vec::new(),
        bant: None,
        behavioral_score: Score::MIN,
        ml_score: None,
        crm_links: Vec::new(),
        created_at,
        updated_at: created_at,
        stage_changed_at: created_at,
        last_contacted_at: None,
        merged_into: None,
        version: 1,
        history: Vec::new(),
        events: Vec::new(),
        routing: None,
        crm_applied: None,
    }
}

fn day(d: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
        + Duration::days(d)
}

fn text(values: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(values).prop_map(str::to_owned))
}

fn arb_fields() -> impl Strategy<Value = LeadFields> {
    let contact = (
        prop::sample::select(&["ana@acme.com", "ana.lopez@gmail.com", "bob@globex.es"][..]),
        text(&["Ana", "Bob", "Robert"]),
        text(&["Lopez", "Smith"]),
        prop::option::of(prop::sample::select(&["+14155552671", "+34612345678"][..])),
        text(&["Acme", "Globex S.L."]),
        text(&["CTO", "VP Sales"]),
        text(&["https://acme.com", "https://globex.es"]),
        text(&["ES", "US"]),
        prop::option::of(any::<bool>()),
        text(&["I agree", "Acepto"]),
    );
    let other = (
        text(&["software", "retail"]),
        prop::option::of(prop::sample::select(&[10u32, 500][..])),
        prop::option::of(prop::sample::select(&[5000i64, 20000][..])),
        text(&["asap", "3 months"]),
        text(&["web", "google"]),
        text(&["hello", "need a demo"]),
        (
            text(&["google", "bing"]),
            text(&["spring", "fall"]),
            text(&["cpc", "email"]),
        ),
        text(&["https://acme.com/a", "https://acme.com/b"]),
        prop::collection::btree_map(
            prop::sample::select(&["plan", "ref", "seats"][..]),
            prop::sample::select(&["1", "2", "pro"][..]),
            0..3,
        ),
    );
    (contact, other).prop_map(
        |(
            (email, first, last, phone, company, job, website, country, consent, consent_text),
            (industry, size, budget, timeline, source, message, (us, uc, um), landing, metadata),
        )| {
            let mut f = LeadFields::new(Email::parse(email).expect("valid test e-mail"));
            f.first_name = first;
            f.last_name = last;
            f.phone = phone.and_then(|p| Phone::parse(p, Region::default()).ok());
            f.company = company;
            f.job_title = job;
            f.website = website;
            f.country = country;
            f.consent_marketing = consent;
            f.consent_text = consent_text;
            f.industry = industry;
            f.company_size = size;
            f.budget = budget.map(Decimal::from);
            f.timeline = timeline;
            f.source = source;
            f.message = message;
            f.utm_source = us;
            f.utm_campaign = uc;
            f.utm_medium = um;
            f.landing_page = landing;
            f.metadata = metadata
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::from(v)))
                .collect::<Map<String, Value>>();
            f
        },
    )
}

fn arb_event() -> impl Strategy<Value = LeadEvent> {
    (prop::sample::select(&EventKind::ALL[..]), 0i64..5).prop_map(|(kind, d)| LeadEvent {
        kind,
        at: day(d),
        properties: Map::new(),
    })
}

fn arb_change() -> impl Strategy<Value = StageChange> {
    (
        prop::sample::select(&Stage::ALL[..]),
        prop::sample::select(&Stage::ALL[..]),
        0i64..5,
    )
        .prop_map(|(from, to, d)| StageChange {
            from,
            to,
            at: day(d),
            notes: None,
            origin: ChangeOrigin::Local,
        })
}

fn arb_bant() -> impl Strategy<Value = Option<BantResult>> {
    prop::option::of((0u8..=4).prop_map(|score| BantResult {
        budget: BantLetter {
            met: score > 0,
            evidence: None,
        },
        authority: BantLetter::default(),
        need: BantLetter::default(),
        timeline: BantLetter::default(),
        score,
        level: BantLevel::NotQualified,
        qualified: score >= 3,
    }))
}

/// Arbitrary leads drawn from small value sets, so that two leads often
/// share ids, times, values and metadata keys (ties and clashes are what
/// merge rules are about).
pub(crate) fn arb_lead() -> impl Strategy<Value = Lead> {
    (
        (0u64..3, 0i64..3, 0i64..3, arb_fields()),
        (
            0u8..=100,
            prop::sample::select(&Stage::ALL[..]),
            arb_bant(),
            0u8..=100,
        ),
        (
            prop::option::of(prop::sample::select(&["rep1@us.com", "rep2@us.com"][..])),
            prop::option::of(prop::sample::select(&[1000i64, 5000][..])),
            prop::collection::vec(
                prop::sample::select(&["score:low", "source:paid"][..]),
                0..2,
            ),
            prop::option::of(prop::sample::select(&["001A", "002B"][..])),
        ),
        (
            prop::collection::vec(arb_event(), 0..4),
            prop::collection::vec(arb_change(), 0..3),
            prop::option::of(0i64..5),
            1u64..10,
        ),
    )
        .prop_map(
            |(
                (id, created, updated, fields),
                (score, stage, bant, behavioral),
                (rep, value, segments, crm),
                (mut events, mut history, contacted, version),
            )| {
                events.sort_by_key(|e| e.at);
                history.sort_by_key(|h| h.at);
                let mut l = from_fields(LeadExtId::from_random(id * 7919), fields, day(created));
                l.updated_at = day(created + updated);
                l.score = Score::clamped(i64::from(score));
                l.priority = crate::PriorityThresholds::default().priority(l.score);
                l.score_breakdown = vec![RuleHit {
                    group: "basic".into(),
                    rule: format!("r{score}").into(),
                    points: i32::from(score),
                }];
                l.stage = stage;
                l.bant = bant;
                l.behavioral_score = Score::clamped(i64::from(behavioral));
                l.assigned_to = rep.and_then(|r| RepId::parse(r).ok());
                l.estimated_value = value.map(Decimal::from);
                l.currency = value.map(|_| "EUR".to_owned());
                l.segments = segments.into_iter().map(str::to_owned).collect();
                l.crm_links = crm
                    .map(|id| CrmLink {
                        crm: CrmKind::Salesforce,
                        object: "Lead".into(),
                        id: id.into(),
                    })
                    .into_iter()
                    .collect();
                l.last_contacted_at = contacted.map(day);
                l.version = version;
                l.events = events;
                l.history = history;
                l
            },
        )
}
