//! The e-mail templates: built-in ones per event kind, each replaceable by
//! a file of the same name in a templates directory.
//!
//! Three per kind: `<kind>.subject.txt`, `<kind>.txt` (the plain-text
//! body) and `<kind>.html` (auto-escaped: a lead's name is whatever a web
//! form got). Every `.txt` and `.html` file of the directory is loaded,
//! so an override may `{% include %}` a piece of its own.
//!
//! A template sees the event as its JSON (`lead`, `to`, `from`, `items`,
//! ..., as in the webhook payload's `data`), `kind` (`assigned`) and
//! `link` (the lead's link, or none), plus `lead_link(ext_id)` for a
//! digest's leads and the filters `datetime` (`2026-12-03 14:05 UTC`)
//! and `date` (`2026-12-03`).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use lead_core::notify::{Event, LeadCard, Notification, NotificationKind, TaskCard};
use lead_core::{ChangeOrigin, LeadExtId, Priority, RepId, Stage};
use minijinja::Environment;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};

use crate::error::ConfigError;
use crate::links::LeadLinks;

/// The built-in templates, by file name.
const BUILT_IN: [(&str, &str); 12] = [
    (
        "high_priority_lead.subject.txt",
        include_str!("../../templates/high_priority_lead.subject.txt"),
    ),
    (
        "high_priority_lead.txt",
        include_str!("../../templates/high_priority_lead.txt"),
    ),
    (
        "high_priority_lead.html",
        include_str!("../../templates/high_priority_lead.html"),
    ),
    (
        "assigned.subject.txt",
        include_str!("../../templates/assigned.subject.txt"),
    ),
    ("assigned.txt", include_str!("../../templates/assigned.txt")),
    (
        "assigned.html",
        include_str!("../../templates/assigned.html"),
    ),
    (
        "stage_changed.subject.txt",
        include_str!("../../templates/stage_changed.subject.txt"),
    ),
    (
        "stage_changed.txt",
        include_str!("../../templates/stage_changed.txt"),
    ),
    (
        "stage_changed.html",
        include_str!("../../templates/stage_changed.html"),
    ),
    (
        "digest.subject.txt",
        include_str!("../../templates/digest.subject.txt"),
    ),
    ("digest.txt", include_str!("../../templates/digest.txt")),
    ("digest.html", include_str!("../../templates/digest.html")),
];

/// What one notification's e-mail says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject: one line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

/// The three parts of a message, in the order rendered.
const PARTS: [&str; 3] = ["subject.txt", "txt", "html"];

/// The compiled templates.
pub(crate) struct Templates {
    env: Environment<'static>,
    /// Where each template came from (the file, or the built-in name), for
    /// messages.
    origins: Vec<(String, PathBuf)>,
}

impl Templates {
    /// Compiles the built-in templates, replaced by those of `dir`, and
    /// renders each kind once with a sample event: a template that does
    /// not compile, or fails on an event it will get, is refused now
    /// rather than when a lead comes in.
    pub(crate) fn load(dir: Option<&Path>, links: &LeadLinks) -> Result<Templates, ConfigError> {
        let mut env = Environment::new();
        env.set_syntax(
            SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .expect("the default delimiters"),
        );
        let links = links.clone();
        env.add_function("lead_link", move |ext_id: &str| -> Value {
            match LeadExtId::parse(ext_id) {
                Ok(id) => Value::from(links.url(&id)),
                Err(_) => Value::from(()),
            }
        });
        env.add_filter("datetime", |at: &str| at_format(at, "%Y-%m-%d %H:%M UTC"));
        env.add_filter("date", |at: &str| at_format(at, "%Y-%m-%d"));

        let mut sources: Vec<(String, String, PathBuf)> = BUILT_IN
            .iter()
            .map(|(name, source)| {
                let origin = PathBuf::from(format!("(built-in) {name}"));
                ((*name).to_owned(), (*source).to_owned(), origin)
            })
            .collect();
        if let Some(dir) = dir {
            for (name, source, path) in read_dir(dir)? {
                match sources.iter_mut().find(|(n, _, _)| *n == name) {
                    Some(known) => *known = (name, source, path),
                    None => sources.push((name, source, path)),
                }
            }
        }
        let mut origins = Vec::new();
        for (name, source, path) in sources {
            env.add_template_owned(name.clone(), source)
                .map_err(|e| template_error(&path, &e))?;
            origins.push((name, path));
        }
        let templates = Templates { env, origins };
        for sample in samples() {
            templates
                .render(&sample, &LeadLinks::none())
                .map_err(|(name, e)| template_error(templates.origin(&name), &e))?;
        }
        Ok(templates)
    }

    fn origin(&self, name: &str) -> &Path {
        self.origins
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_path())
            .unwrap_or(Path::new(""))
    }

    /// Renders the three parts for `notification`; on failure, the name of
    /// the template that failed and why.
    pub(crate) fn render(
        &self,
        notification: &Notification,
        links: &LeadLinks,
    ) -> Result<Rendered, (String, minijinja::Error)> {
        let kind = notification.event.kind();
        let mut context = match serde_json::to_value(&notification.event) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        let link = notification
            .event
            .lead()
            .and_then(|lead| links.url(&lead.ext_id));
        context.insert("kind".into(), kind.as_str().into());
        context.insert("link".into(), link.into());
        let context = Value::from(Serde(&context));
        let mut parts = PARTS.iter().map(|part| {
            let name = format!("{}.{part}", kind.as_str());
            self.env
                .get_template(&name)
                .and_then(|t| t.render(&context))
                .map_err(|e| (name, e))
        });
        let mut next = || parts.next().expect("three parts");
        let subject = next()?;
        let text = next()?;
        let html = next()?;
        Ok(Rendered {
            // A subject is one header line, whatever the template's
            // line breaks.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text,
            html,
        })
    }
}

/// The `.txt` and `.html` files of the templates directory: (name,
/// source, path).
fn read_dir(dir: &Path) -> Result<Vec<(String, String, PathBuf)>, ConfigError> {
    let unreadable = |path: &Path, e: std::io::Error| ConfigError::Template {
        path: path.to_owned(),
        reason: format!("cannot be read ({e})"),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| unreadable(dir, e))? {
        let path = entry.map_err(|e| unreadable(dir, e))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !(name.ends_with(".txt") || name.ends_with(".html")) || !path.is_file() {
            continue;
        }
        let source = std::fs::read_to_string(&path).map_err(|e| unreadable(&path, e))?;
        files.push((name.to_owned(), source, path));
    }
    files.sort();
    Ok(files)
}

fn template_error(path: &Path, err: &minijinja::Error) -> ConfigError {
    ConfigError::Template {
        path: path.to_owned(),
        reason: match err.line() {
            Some(line) => format!("line {line}: {}", err.detail().unwrap_or(&err.to_string())),
            None => err.to_string(),
        },
    }
}

/// An RFC 3339 time (as events serialize) in `format`; anything else as
/// it is.
fn at_format(at: &str, format: &str) -> String {
    match DateTime::parse_from_rfc3339(at) {
        Ok(at) => at.with_timezone(&Utc).format(format).to_string(),
        Err(_) => at.to_owned(),
    }
}

/// One notification of each kind, every optional field filled, for the
/// check when templates load.
fn samples() -> Vec<Notification> {
    let at = DateTime::<Utc>::UNIX_EPOCH;
    let rep = RepId::parse("rep@example.com").expect("a valid rep id");
    let lead = LeadCard {
        ext_id: LeadExtId::parse("WEB-23456789").expect("a valid id"),
        name: Some("Sample Lead".into()),
        email: "sample@example.com".into(),
        company: Some("Example".into()),
        job_title: Some("Buyer".into()),
        score: 90,
        priority: Priority::High,
        stage: Stage::Qualified,
        assigned_to: Some(rep.clone()),
        source: Some("website".into()),
        estimated_value: Some(1000.into()),
        currency: Some("EUR".into()),
    };
    let task = TaskCard {
        id: uuid::Uuid::nil(),
        subject: "Call back".into(),
        due_at: at,
    };
    let events = [
        Event::HighPriorityLead { lead: lead.clone() },
        Event::Assigned {
            lead: lead.clone(),
            to: rep.clone(),
            from: Some(rep.clone()),
        },
        Event::StageChanged {
            lead: lead.clone(),
            from: Stage::Negotiation,
            to: Stage::Won,
            origin: ChangeOrigin::Crm,
        },
        Event::Digest {
            rep: Some(rep),
            items: vec![
                lead_core::notify::DigestItem::FollowUpOverdue {
                    lead: lead.clone(),
                    task: task.clone(),
                },
                lead_core::notify::DigestItem::FollowUpDue {
                    lead: lead.clone(),
                    task,
                },
                lead_core::notify::DigestItem::StaleLead {
                    lead,
                    last_touch: at,
                    days: 3,
                },
            ],
        },
    ];
    debug_assert_eq!(events.len(), NotificationKind::ALL.len());
    events
        .into_iter()
        .map(|event| Notification {
            id: uuid::Uuid::nil(),
            created_at: at,
            event,
        })
        .collect()
}
