//! BANT qualification: Budget, Authority, Need, Timeline, with the evidence
//! behind each letter.

use serde::{Deserialize, Serialize};

use crate::model::{EventKind, LeadEvent, LeadFields};

/// Knobs for BANT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BantConfig {
    /// Letters needed to count as qualified (default 3).
    pub threshold: u8,
    /// Move leads at or above `threshold` to `qualified` automatically.
    pub auto_qualify_enabled: bool,
    /// A timeline within this many days counts (default 90).
    pub timeline_horizon_days: u32,
    /// Title words that mark a decision maker (lower case).
    pub authority_titles: Vec<String>,
    /// Words in the message that describe a need (lower case).
    pub need_keywords: Vec<String>,
    /// Words in the message that state a budget (lower case), counted only
    /// next to an amount.
    pub budget_keywords: Vec<String>,
}

impl Default for BantConfig {
    fn default() -> Self {
        let words = |ws: &[&str]| ws.iter().map(|w| (*w).to_owned()).collect();
        Self {
            threshold: 3,
            auto_qualify_enabled: false,
            timeline_horizon_days: 90,
            authority_titles: words(&[
                "ceo",
                "cto",
                "cfo",
                "coo",
                "cmo",
                "cio",
                "cro",
                "chief",
                "founder",
                "co-founder",
                "owner",
                "president",
                "vp",
                "vice president",
                "director",
                "head of",
                "partner",
                "managing director",
                "gerente",
                "directora",
                "jefe",
                "jefa",
                "propietario",
                "socio",
                "fundador",
            ]),
            need_keywords: words(&[
                "need",
                "looking for",
                "interested",
                "demo",
                "pricing",
                "quote",
                "problem",
                "solution",
                "replace",
                "evaluate",
                "trial",
                "necesit",
                "busca",
                "interesad",
                "cotizaci",
                "solucion",
                "solución",
            ]),
            budget_keywords: words(&["budget", "presupuesto", "$", "€", "£", "usd", "eur"]),
        }
    }
}

/// How qualified a lead is by its BANT count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BantLevel {
    /// Fewer than 2 letters.
    NotQualified,
    /// 2 letters.
    Moderately,
    /// 3 letters.
    Well,
    /// All 4 letters.
    Highly,
}

/// One BANT letter: whether it is met and what showed it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BantLetter {
    /// The letter is met.
    pub met: bool,
    /// What showed it (`budget field: 5000`, `job_title: "VP Sales"`).
    pub evidence: Option<String>,
}

impl BantLetter {
    fn met(evidence: String) -> Self {
        BantLetter {
            met: true,
            evidence: Some(evidence),
        }
    }
}

/// The BANT verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BantResult {
    /// Budget.
    pub budget: BantLetter,
    /// Authority.
    pub authority: BantLetter,
    /// Need.
    pub need: BantLetter,
    /// Timeline.
    pub timeline: BantLetter,
    /// Letters met, 0-4.
    pub score: u8,
    /// Level for `score`.
    pub level: BantLevel,
    /// `score` reached the configured threshold.
    pub qualified: bool,
}

fn contains_any<'a>(text: &str, words: &'a [String]) -> Option<&'a str> {
    words
        .iter()
        .find(|w| text.contains(w.as_str()))
        .map(String::as_str)
}

/// Reads a timeline (`asap`, `this quarter`, `3 months`, `2 semanas`) as a
/// number of days; `None` when it cannot tell.
pub fn timeline_days(text: &str) -> Option<u32> {
    let t = text.to_lowercase();
    let keyword_days: &[(&str, u32)] = &[
        ("asap", 7),
        ("immediate", 7),
        ("urgent", 7),
        ("right away", 7),
        ("now", 7),
        ("inmediat", 7),
        ("urgente", 7),
        ("this week", 7),
        ("next week", 14),
        ("this month", 30),
        ("este mes", 30),
        ("next month", 60),
        ("próximo mes", 60),
        ("this quarter", 90),
        ("este trimestre", 90),
        ("next quarter", 180),
        ("this year", 365),
        ("este año", 365),
        ("next year", 540),
        ("no timeline", u32::MAX),
        ("just browsing", u32::MAX),
    ];
    let number: Option<u32> = t
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|n| n.parse().ok());
    if let Some(n) = number {
        let unit_days = if t.contains("week") || t.contains("semana") {
            7
        } else if t.contains("month") || t.contains("mes") {
            30
        } else if t.contains("year") || t.contains("año") {
            365
        } else if t.contains("day") || t.contains("día") || t.contains("dia") {
            1
        } else {
            0
        };
        if unit_days > 0 {
            return Some(n.saturating_mul(unit_days));
        }
    }
    // Keywords match at word starts so "know" is not "now" ("immediate" still matches "immediately").
    let words: Vec<&str> = t.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let padded = format!(" {}", words.join(" "));
    keyword_days.iter().find(|(k, _)| padded.contains(&format!(" {k}"))).map(|(_, d)| *d)
}

impl BantConfig {
    /// Evaluates BANT from form fields, the message and the lead's events.
    ///
    /// - **B**: a stated budget above zero, or a budget word next to a number in the message.
    /// - **A**: a decision-making job title.
    /// - **N**: a need word in the message, or a `demo_request` event.
    /// - **T**: a timeline within `timeline_horizon_days`.
    ///
    /// # Example
    ///
    /// ```
    /// use lead_core::{BantConfig, BantLevel, Email, LeadFields};
    /// let mut f = LeadFields::new(Email::parse("cto@acme.com").unwrap());
    /// f.job_title = Some("CTO".into());
    /// f.message = Some("We need a demo, budget $20k".into());
    /// f.timeline = Some("this quarter".into());
    /// let b = BantConfig::default().evaluate(&f, &[]);
    /// assert_eq!((b.score, b.level, b.qualified), (4, BantLevel::Highly, true));
    /// ```
    pub fn evaluate(&self, fields: &LeadFields, events: &[LeadEvent]) -> BantResult {
        let message = fields
            .message
            .as_deref()
            .map(str::to_lowercase)
            .unwrap_or_default();

        let budget = match fields.budget {
            Some(b) if b > rust_decimal::Decimal::ZERO => {
                BantLetter::met(format!("budget field: {b}"))
            }
            _ => match contains_any(&message, &self.budget_keywords) {
                Some(word) if message.chars().any(|c| c.is_ascii_digit()) => {
                    BantLetter::met(format!("message mentions `{word}` with an amount"))
                }
                _ => BantLetter::default(),
            },
        };

        let authority = fields
            .job_title
            .as_deref()
            .and_then(|title| {
                let lower = title.to_lowercase();
                // Word boundaries matter: "cto" must not match "director" and "vp" not "mvp".
                let words: Vec<&str> = lower
                    .split(|c: char| !c.is_alphanumeric() && c != '-')
                    .collect();
                self.authority_titles
                    .iter()
                    .find(|t| {
                        if t.contains(' ') {
                            lower.contains(t.as_str())
                        } else {
                            words.contains(&t.as_str())
                        }
                    })
                    .map(|_| BantLetter::met(format!("job_title: {title:?}")))
            })
            .unwrap_or_default();

        let need = match contains_any(&message, &self.need_keywords) {
            Some(word) => BantLetter::met(format!("message mentions `{word}`")),
            None if events.iter().any(|e| e.kind == EventKind::DemoRequest) => {
                BantLetter::met("demo_request event".to_owned())
            }
            None => BantLetter::default(),
        };

        let timeline = fields
            .timeline
            .as_deref()
            .and_then(|t| match timeline_days(t) {
                Some(days) if days <= self.timeline_horizon_days => {
                    Some(BantLetter::met(format!("timeline {t:?} ≈ {days} days")))
                }
                _ => None,
            })
            .unwrap_or_default();

        let score = [&budget, &authority, &need, &timeline]
            .iter()
            .filter(|l| l.met)
            .count() as u8;
        let level = match score {
            4 => BantLevel::Highly,
            3 => BantLevel::Well,
            2 => BantLevel::Moderately,
            _ => BantLevel::NotQualified,
        };
        BantResult {
            budget,
            authority,
            need,
            timeline,
            score,
            level,
            qualified: score >= self.threshold,
        }
    }
}
