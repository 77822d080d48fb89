//! What every test of the `lead` binary uses: running it with nothing of
//! this process's environment but the store, and reading its output.
//! (Each test file uses its own part of it.)
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde_json::{Map, Value};

/// Runs `lead ARGS` in `dir`, with `DATABASE_URL` set to `url` when given.
pub(crate) fn lead_at(dir: &Path, url: Option<&str>, args: &[&str]) -> Output {
    let mut command = assert_cmd::Command::cargo_bin("lead").unwrap();
    command.env_clear().current_dir(dir).args(args);
    if let Some(url) = url {
        command.env("DATABASE_URL", url);
    }
    command.output().unwrap()
}

/// A fresh SQLite store's URL in `dir`.
pub(crate) fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("leads.db").display())
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The number after `what` on the summary line that starts with it.
pub(crate) fn count_in(stdout: &str, what: &str) -> u64 {
    stdout
        .lines()
        .find_map(|line| {
            let rest = line.trim_start().strip_prefix(what)?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no {what:?} line in:\n{stdout}"))
}

/// [`count_in`] the command's standard output.
pub(crate) fn count(out: &Output, what: &str) -> u64 {
    count_in(&text(&out.stdout), what)
}

/// The leads of a `lead export --format jsonl`, by e-mail.
pub(crate) fn exported(out: &Output) -> BTreeMap<String, Map<String, Value>> {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|line| {
            let object: Map<String, Value> = serde_json::from_str(line).unwrap();
            (object["email"].as_str().unwrap().to_owned(), object)
        })
        .collect()
}
