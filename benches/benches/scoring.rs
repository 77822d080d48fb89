//! Per-lead cost of the scoring path: rule score + priority + BANT +
//! behavioral score (SPEC target: under 1 µs per lead), plus normalization
//! of raw form input for context.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use lead_core::{
    BantConfig, BehaviorConfig, EventKind, LeadEvent, LeadInput, NormalizeOptions,
    PriorityThresholds, RuleSet, normalize,
};

fn sample_input() -> LeadInput {
    LeadInput {
        email: Some("juan.perez@empresa.com".into()),
        first_name: Some("Juan".into()),
        last_name: Some("Pérez".into()),
        phone: Some("+34612345678".into()),
        company: Some("Mi Empresa SL".into()),
        source: Some("web".into()),
        message: Some("Interesado en una demo, presupuesto 20000 EUR".into()),
        utm_source: Some("google".into()),
        utm_campaign: Some("summer_2024".into()),
        utm_medium: Some("cpc".into()),
        landing_page: Some("https://tuweb.com/landing".into()),
        job_title: Some("Director Comercial".into()),
        timeline: Some("this quarter".into()),
        ..Default::default()
    }
}

fn bench_scoring(c: &mut Criterion) {
    let fields = normalize(&sample_input(), &NormalizeOptions::default()).expect("valid sample");
    let now = Utc
        .with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
        .single()
        .expect("valid date");
    let events: Vec<LeadEvent> = [
        (EventKind::PageVisit, 1),
        (EventKind::PricingView, 3),
        (EventKind::Download, 8),
        (EventKind::EmailClick, 12),
        (EventKind::WebinarRegister, 20),
    ]
    .into_iter()
    .map(|(kind, days)| LeadEvent {
        kind,
        at: now - Duration::days(days),
        properties: Default::default(),
    })
    .collect();
    let rules = RuleSet::default();
    let thresholds = PriorityThresholds::default();
    let bant = BantConfig::default();
    let behavior = BehaviorConfig::default();

    c.bench_function("score+priority+bant+behavior per lead", |b| {
        b.iter(|| {
            let f = black_box(&fields);
            let scored = rules.score(f);
            let priority = thresholds.priority(scored.score);
            let qualified = bant.evaluate(f, black_box(&events));
            let behavioral = behavior.score(black_box(&events), now);
            black_box((scored, priority, qualified, behavioral))
        })
    });
    c.bench_function("rule score only", |b| {
        b.iter(|| black_box(rules.score(black_box(&fields))))
    });
    c.bench_function("bant only", |b| {
        b.iter(|| black_box(bant.evaluate(black_box(&fields), &events)))
    });
    c.bench_function("behavior only (5 events)", |b| {
        b.iter(|| black_box(behavior.score(black_box(&events), now)))
    });
    c.bench_function("normalize raw input", |b| {
        let input = sample_input();
        let options = NormalizeOptions::default();
        b.iter(|| black_box(normalize(black_box(&input), &options)))
    });
}

criterion_group!(benches, bench_scoring);
criterion_main!(benches);
