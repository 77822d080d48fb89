//! Match keys for many leads at once.

use std::borrow::Borrow;
use std::collections::HashMap;

use super::parallel::parallel_chunks;
use super::table::{KeyTable, KeyTableBuilder};

use crate::matchkey::{MatchKeys, company_tokens, email_match_key, fold_text, phone_key, phonetic};
use crate::model::LeadFields;
use crate::normalize::{DomainKind, classify_domain, registrable_domain};

/// Per-thread memos of what a batch repeats: the Double Metaphone codes of
/// surnames and the classification of e-mail hosts (a batch has far fewer
/// distinct surnames and hosts than leads; the disposable-domain check
/// and the Public Suffix List lookup are paid once per distinct host).
#[derive(Default)]
struct Memos {
    sounds: Sounds,
    hosts: HashMap<String, (Option<String>, DomainKind)>,
}

/// The Double Metaphone codes ([`phonetic`]) of folded names, computed
/// once per distinct name (a batch has a few thousand).
#[derive(Default)]
pub(crate) struct Sounds(HashMap<String, (String, String)>);

impl Sounds {
    /// The (primary, alternate) codes of `folded`.
    pub(crate) fn of(&mut self, folded: &str) -> &(String, String) {
        if !self.0.contains_key(folded) {
            self.0.insert(folded.to_owned(), phonetic(folded));
        }
        self.0.get(folded).unwrap_or(&NO_SOUND)
    }
}

/// What [`Sounds::of`] answers if its own entry were missing (it never is).
static NO_SOUND: (String, String) = (String::new(), String::new());

impl Memos {
    fn sound(&mut self, folded: &str) -> (String, String) {
        self.sounds.of(folded).clone()
    }

    fn host(&mut self, host: &str) -> (Option<String>, DomainKind) {
        if let Some(hit) = self.hosts.get(host) {
            return hit.clone();
        }
        let classified = classify(host);
        self.hosts.insert(host.to_owned(), classified.clone());
        classified
    }
}

/// Exactly [`MatchKeys::of`], with hosts and surname codes memoized.
fn keys_of(fields: &LeadFields, memos: &mut Memos) -> MatchKeys {
    let folded = |v: &Option<String>| v.as_deref().map(fold_text).filter(|s| !s.is_empty());
    let last_name = folded(&fields.last_name);
    let (domain, domain_kind) = memos.host(fields.email.domain());
    MatchKeys {
        email: email_match_key(&fields.email),
        domain,
        domain_kind,
        phone: phone_key(fields),
        first_name: folded(&fields.first_name),
        last_name_phonetic: last_name.as_deref().map(|l| memos.sound(l)),
        last_name,
        company: fields
            .company
            .as_deref()
            .map(company_tokens)
            .unwrap_or_default(),
    }
}

/// What [`MatchKeys::of`] computes for an e-mail host.
fn classify(host: &str) -> (Option<String>, DomainKind) {
    let domain = registrable_domain(host).map(str::to_owned);
    let kind = classify_domain(domain.as_deref().unwrap_or(host));
    (domain, kind)
}

/// [`MatchKeys::of`] for every lead, in order: the same keys, computed on
/// up to [`std::thread::available_parallelism`] threads.
///
/// Each thread classifies each distinct e-mail host once and memoizes
/// surname codes.
pub fn match_keys_batch(fields: &[LeadFields]) -> Vec<MatchKeys> {
    parallel_chunks(fields, 10_000, |chunk| {
        let mut memos = Memos::default();
        chunk.iter().map(|f| keys_of(f, &mut memos)).collect()
    })
}

impl KeyTable {
    /// The table of leads' keys: [`MatchKeys::of`] of each, computed on up
    /// to [`std::thread::available_parallelism`] threads, each lead's keys
    /// interned as soon as they are computed (a table per thread, joined at
    /// the end), so no list of full keys is ever held.
    pub fn of_fields<F: Borrow<LeadFields> + Sync>(fields: &[F]) -> KeyTable {
        key_table(fields)
    }
}

/// [`KeyTable::of_fields`]: each thread interns the keys of its share of
/// the leads into a table of its own, and the tables are joined in order.
pub(crate) fn key_table<F: Borrow<LeadFields> + Sync>(fields: &[F]) -> KeyTable {
    let parts = parallel_chunks(fields, 10_000, |chunk| {
        let mut memos = Memos::default();
        let mut part = KeyTableBuilder::default();
        for f in chunk {
            part.push(&keys_of(f.borrow(), &mut memos));
        }
        vec![part]
    });
    let mut parts = parts.into_iter();
    let mut table = parts.next().unwrap_or_default();
    for part in parts {
        table.append(part);
    }
    table.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Email;

    #[test]
    fn batch_keys_equal_one_by_one_keys() {
        let fields: Vec<LeadFields> = (0..12_000)
            .map(|i| {
                let domain = ["gmail.com", "acme.co.uk", "mailinator.com", "globex.es"][i % 4];
                let mut f = LeadFields::new(
                    Email::parse(&format!("user.{i}+x@{domain}")).expect("valid test e-mail"),
                );
                f.first_name = (i % 3 != 0).then(|| "José".to_owned());
                f.last_name = (i % 5 != 0).then(|| ["Smith", "Peña", "O'Neil"][i % 3].to_owned());
                f.company = (i % 2 == 0).then(|| "ACME S.L.".to_owned());
                f
            })
            .collect();
        let batch = match_keys_batch(&fields);
        let single: Vec<MatchKeys> = fields.iter().map(MatchKeys::of).collect();
        assert_eq!(batch, single);
    }
}
