//! One routing decision among 200 reps with capacities, mixed time zones and
//! working hours (target: under 20 µs).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use criterion::{Criterion, criterion_group, criterion_main};
use lead_core::routing::{RoutingConfig, RoutingRequest, RoutingStrategy, route};
use lead_core::{
    Absence, Email, LeadFields, MatchKeys, Rep, RepId, RepLoad, RepState, WorkingHours,
};

const ZONES: [Tz; 10] = [
    Tz::UTC,
    chrono_tz::America::New_York,
    chrono_tz::America::Chicago,
    chrono_tz::America::Los_Angeles,
    chrono_tz::America::Sao_Paulo,
    chrono_tz::Europe::London,
    chrono_tz::Europe::Madrid,
    chrono_tz::Asia::Kolkata,
    chrono_tz::Asia::Tokyo,
    chrono_tz::Australia::Sydney,
];

const INDUSTRIES: [&str; 5] = ["software", "retail", "banking", "health", "manufacturing"];
const REGIONS: [&str; 6] = ["US", "ES", "GB", "DE", "BR", "JP"];
const LANGUAGES: [&str; 4] = ["en", "es", "pt", "ja"];

fn time(h: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, 0, 0).expect("valid hour")
}

/// 200 reps: a mix of zones, day and night shifts, always-on reps, absences,
/// holidays, skills, and workloads from empty to full.
fn reps(now: DateTime<Utc>) -> Vec<RepState> {
    use Weekday::*;
    (0..200u32)
        .map(|n| {
            let id = RepId::parse(&format!("rep{n:03}@example.com")).expect("valid id");
            let mut rep = Rep::new(id, format!("Rep {n}"));
            rep.time_zone = ZONES[(n % 10) as usize];
            rep.working_hours = match n % 4 {
                0 => WorkingHours::default(),
                1 => WorkingHours {
                    days: vec![Mon, Tue, Wed, Thu, Fri],
                    start: time(8),
                    end: time(16),
                },
                2 => WorkingHours {
                    days: vec![Sun, Mon, Tue, Wed, Thu],
                    start: time(22),
                    end: time(6),
                },
                _ => WorkingHours::always(),
            };
            if n % 17 == 0 {
                rep.absences.push(Absence {
                    start: now - Duration::days(2),
                    end: now + Duration::days(5),
                });
            }
            rep.absences.push(Absence {
                start: now + Duration::days(30),
                end: now + Duration::days(37),
            });
            if n % 23 == 0 {
                rep.holidays
                    .insert(NaiveDate::from_ymd_opt(2024, 11, 4).expect("valid date"));
            }
            rep.holidays
                .insert(NaiveDate::from_ymd_opt(2024, 12, 25).expect("valid date"));
            rep.daily_capacity = 10 + n % 15;
            rep.open_capacity = 50 + n % 100;
            rep.weight = 0.5 + f64::from(n % 4) * 0.5;
            rep.conversion_rate = f64::from(n % 30) / 100.0;
            rep.skills
                .industries
                .insert(INDUSTRIES[(n % 5) as usize].to_owned());
            rep.skills
                .regions
                .insert(REGIONS[(n % 6) as usize].to_owned());
            rep.skills
                .languages
                .insert(LANGUAGES[(n % 4) as usize].to_owned());
            rep.skills.languages.insert("en".to_owned());
            let load = RepLoad {
                open_leads: (n * 7) % rep.open_capacity,
                assigned_today: n % 12,
                today: Some(NaiveDate::from_ymd_opt(2024, 11, 4).expect("valid date")),
                last_assigned_at: Some(now - Duration::minutes(i64::from(n))),
                pass: f64::from(n % 13) * 0.7,
            };
            RepState { rep, load }
        })
        .collect()
}

fn bench_routing(c: &mut Criterion) {
    // Monday 14:00 UTC: morning in the Americas, afternoon in Europe,
    // evening in Asia and night in Sydney, so every filter has work to do.
    let now = Utc
        .with_ymd_and_hms(2024, 11, 4, 14, 0, 0)
        .single()
        .expect("valid instant");
    let reps = reps(now);
    let mut lead = LeadFields::new(Email::parse("jo@acme.com").expect("valid e-mail"));
    lead.industry = Some("software".into());
    lead.country = Some("US".into());
    lead.metadata
        .insert("language".into(), serde_json::json!("en"));
    let keys = MatchKeys::of(&lead);
    let request = RoutingRequest {
        lead: &lead,
        keys: &keys,
        account_owner: None,
        now,
    };
    let intelligent = RoutingConfig::default();
    let round_robin = RoutingConfig {
        strategy: RoutingStrategy::RoundRobin,
        ..RoutingConfig::default()
    };
    let decision = route(&intelligent, &reps, &request);
    assert!(decision.assigned.is_some(), "the bench state must route");

    c.bench_function("route/200_reps/intelligent", |b| {
        b.iter(|| {
            route(
                black_box(&intelligent),
                black_box(&reps),
                black_box(&request),
            )
        })
    });
    c.bench_function("route/200_reps/round_robin", |b| {
        b.iter(|| {
            route(
                black_box(&round_robin),
                black_box(&reps),
                black_box(&request),
            )
        })
    });
}

criterion_group!(benches, bench_routing);
criterion_main!(benches);
