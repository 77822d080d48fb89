//! BANT qualification: Budget, Authority, Need, Timeline, with the evidence
//! behind each letter.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::keywords::{Keywords, WordBounds, lower};
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
    pub authority_titles: Keywords,
    /// Words in the message that describe a need (lower case).
    pub need_keywords: Keywords,
    /// Words in the message that state a budget (lower case), counted only
    /// next to an amount.
    pub budget_keywords: Keywords,
}

impl Default for BantConfig {
    fn default() -> Self {
        let words = |ws: &[&str]| Keywords::new(ws);
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

/// Reads a timeline (`asap`, `this quarter`, `3 months`, `2 semanas`) as a
/// number of days; `None` when it cannot tell.
pub fn timeline_days(text: &str) -> Option<u32> {
    /// Phrases and the days they mean; matched at word starts so "know" is
    /// not "now" while "immediate" still finds "immediately".
    const PHRASES: &[(&str, u32)] = &[
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
    /// Units after a number, and their length in days.
    const UNITS: &[(&str, u32)] = &[
        ("week", 7),
        ("semana", 7),
        ("month", 30),
        ("mes", 30),
        ("year", 365),
        ("año", 365),
        ("day", 1),
        ("día", 1),
        ("dia", 1),
    ];
    static PHRASE_WORDS: LazyLock<Keywords> =
        LazyLock::new(|| Keywords::new(PHRASES.iter().map(|(p, _)| *p)));
    static UNIT_WORDS: LazyLock<Keywords> =
        LazyLock::new(|| Keywords::new(UNITS.iter().map(|(u, _)| *u)));

    let t = lower(text);
    let number: Option<u32> = t
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|n| n.parse().ok());
    if let (Some(n), Some(unit)) = (number, UNIT_WORDS.find_index(&t, WordBounds::WordStart)) {
        return Some(n.saturating_mul(UNITS[unit].1));
    }
    PHRASE_WORDS
        .find_index(&t, WordBounds::WordStart)
        .map(|i| PHRASES[i].1)
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
        let message = lower(fields.message.as_deref().unwrap_or_default());

        let budget = match fields.budget {
            Some(b) if b > rust_decimal::Decimal::ZERO => {
                BantLetter::met(format!("budget field: {b}"))
            }
            _ => match self.budget_keywords.find(&message, WordBounds::Anywhere) {
                Some(word) if message.chars().any(|c| c.is_ascii_digit()) => {
                    BantLetter::met(["message mentions `", word, "` with an amount"].concat())
                }
                _ => BantLetter::default(),
            },
        };

        let authority = fields
            .job_title
            .as_deref()
            .and_then(|title| {
                let title_lower = lower(title);
                // Whole words: "cto" must not match "director", nor "vp" "mvp".
                self.authority_titles
                    .find(&title_lower, WordBounds::WholeWord)
                    .map(|_| BantLetter::met(["job_title: ", title].concat()))
            })
            .unwrap_or_default();

        let need = match self.need_keywords.find(&message, WordBounds::Anywhere) {
            Some(word) => BantLetter::met(["message mentions `", word, "`"].concat()),
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
                    Some(BantLetter::met(format!("timeline: {t} (≈ {days} days)")))
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
