//! The match keys of a whole batch in compact form.
//!
//! A million [`MatchKeys`] are eight heap strings each, about 450 bytes a
//! lead, while a batch repeats the same few thousand first names, surnames,
//! companies and domains over and over. A [`KeyTable`] keeps each distinct
//! value once and a fixed-size row of ids per lead (44 bytes), the e-mail
//! keys in one buffer: about 70 MB for a million leads, and a lead's keys
//! can be pushed as soon as they are computed, so a batch read from a
//! file never holds more than one chunk of leads at a time.
//!
//! Duplicate detection ([`find_duplicates_in`](super::find_duplicates_in))
//! reads the rows through the same comparators as single [`MatchKeys`]
//! ([`KeyView`]), so both give the same levels for the same pair.

use std::collections::HashMap;

use super::hash::{local_part_hash, text_hash};
use super::view::KeyView;
use crate::matchkey::{MatchKeys, PHONE_KEY_DIGITS};
use crate::normalize::DomainKind;

/// Id of an absent value.
const NONE: u32 = u32::MAX;

/// One lead's keys: ids into the table's value lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    /// Start of the e-mail key in [`KeyTable::emails`].
    email: u64,
    email_len: u16,
    /// Bytes before the e-mail key's last `@`.
    local_len: u16,
    /// Hashes of the e-mail key and of its local part as compared
    /// ([`hash::local_part_hash`](super::hash::local_part_hash)): most
    /// pairs differ in both, and the hashes say so without reading the text.
    email_hash: u32,
    local_hash: u32,
    /// The phone key's digits, `phone_len` of them (0: no phone).
    phone: [u8; PHONE_KEY_DIGITS],
    phone_len: u8,
    domain_kind: DomainKind,
    domain: u32,
    first: u32,
    last: u32,
    company: u32,
}

/// Distinct values of one field, by id.
#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<Box<str>, u32>,
}

impl Interner {
    /// The id of `value`, new if unseen; [`NONE`] when the interner is full.
    fn id(&mut self, value: &str) -> u32 {
        match self.ids.get(value) {
            Some(&id) => id,
            None => self.id_owned(value.into()),
        }
    }

    /// The id of an owned value, new if unseen (no copy when new).
    fn id_owned(&mut self, value: Box<str>) -> u32 {
        let next = self.ids.len();
        match self.ids.entry(value) {
            std::collections::hash_map::Entry::Occupied(e) => *e.get(),
            std::collections::hash_map::Entry::Vacant(e) => match u32::try_from(next) {
                Ok(id) if id != NONE => *e.insert(id),
                _ => NONE,
            },
        }
    }

    /// Moves `other`'s values in; returns, for each of `other`'s ids, the
    /// id here.
    fn absorb(&mut self, other: Interner) -> Vec<u32> {
        other
            .into_values()
            .into_iter()
            .map(|v| self.id_owned(v))
            .collect()
    }

    /// The values, indexed by id.
    fn into_values(self) -> Vec<Box<str>> {
        let mut values: Vec<(u32, Box<str>)> = self
            .ids
            .into_iter()
            .map(|(value, id)| (id, value))
            .collect();
        values.sort_unstable_by_key(|(id, _)| *id);
        values.into_iter().map(|(_, value)| value).collect()
    }
}

/// Builds a [`KeyTable`] lead by lead.
///
/// # Example
///
/// ```
/// use lead_core::{Email, LeadFields, MatchKeys};
/// use lead_core::dedup::KeyTableBuilder;
///
/// let mut builder = KeyTableBuilder::default();
/// for email in ["ana@acme.com", "bob@acme.com"] {
///     builder.push(&MatchKeys::of(&LeadFields::new(Email::parse(email).unwrap())));
/// }
/// let table = builder.finish();
/// assert_eq!(table.len(), 2);
/// assert_eq!(table.keys(1).unwrap().email, "bob@acme.com");
/// ```
#[derive(Debug, Default)]
pub struct KeyTableBuilder {
    rows: Vec<Row>,
    emails: String,
    domains: Interner,
    first: Interner,
    last: Interner,
    sounds: Vec<(Box<str>, Box<str>)>,
    companies: Interner,
}

impl KeyTableBuilder {
    /// Adds one lead's keys as the next row. Returns `false`, and adds
    /// nothing, once the table holds `u32::MAX` leads (rows are indexed by
    /// `u32`).
    pub fn push(&mut self, keys: &MatchKeys) -> bool {
        if u32::try_from(self.rows.len()).map_or(true, |n| n == NONE) {
            return false;
        }
        let start = self.emails.len() as u64;
        // An e-mail key is at most an address long (254 bytes); a longer
        // one is cut at a character boundary rather than wrapping around.
        let mut cut = keys.email.len().min(usize::from(u16::MAX));
        while !keys.email.is_char_boundary(cut) {
            cut -= 1;
        }
        let email = keys.email.get(..cut).unwrap_or_default();
        self.emails.push_str(email);
        let local_len = email.rfind('@').unwrap_or(email.len());
        let mut phone = [0u8; PHONE_KEY_DIGITS];
        let mut phone_len = 0u8;
        if let Some(p) = &keys.phone
            && p.len() <= PHONE_KEY_DIGITS
        {
            phone[..p.len()].copy_from_slice(p.as_bytes());
            phone_len = p.len() as u8;
        }
        let last = match &keys.last_name {
            Some(name) => {
                let id = self.last.id(name);
                if id != NONE && id as usize == self.sounds.len() {
                    let (primary, alternate) = keys.last_name_phonetic.clone().unwrap_or_default();
                    self.sounds.push((primary.into(), alternate.into()));
                }
                id
            }
            None => NONE,
        };
        let local = email.get(..local_len).unwrap_or_default();
        self.rows.push(Row {
            email: start,
            email_len: email.len() as u16,
            local_len: local_len as u16,
            email_hash: text_hash(email.bytes()),
            local_hash: local_part_hash(local),
            phone,
            phone_len,
            domain_kind: keys.domain_kind,
            domain: keys.domain.as_deref().map_or(NONE, |d| self.domains.id(d)),
            first: keys
                .first_name
                .as_deref()
                .map_or(NONE, |f| self.first.id(f)),
            last,
            company: match keys.company.as_slice() {
                [] => NONE,
                tokens => self.companies.id(&tokens.join(" ")),
            },
        });
        true
    }

    /// Appends the rows of `other` after these (ids translated). Rows past
    /// `u32::MAX` are dropped, as by [`push`](Self::push).
    pub fn append(&mut self, other: KeyTableBuilder) {
        let sounds = other.sounds;
        let first = self.first.absorb(other.first);
        let companies = self.companies.absorb(other.companies);
        let domains = self.domains.absorb(other.domains);
        let mut last = Vec::with_capacity(sounds.len());
        for (value, sound) in other.last.into_values().into_iter().zip(sounds) {
            let id = self.last.id_owned(value);
            if id != NONE && id as usize == self.sounds.len() {
                self.sounds.push(sound);
            }
            last.push(id);
        }
        let map = |ids: &[u32], id: u32| ids.get(id as usize).copied().unwrap_or(NONE);
        let shift = self.emails.len() as u64;
        self.emails.push_str(&other.emails);
        let room = (NONE as usize).saturating_sub(self.rows.len());
        self.rows
            .extend(other.rows.into_iter().take(room).map(|row| Row {
                email: row.email + shift,
                domain: map(&domains, row.domain),
                first: map(&first, row.first),
                last: map(&last, row.last),
                company: map(&companies, row.company),
                ..row
            }));
    }

    /// Leads pushed so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// `true` when nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table.
    pub fn finish(self) -> KeyTable {
        // Each company word once, each company as its words' ids.
        let mut words = Interner::default();
        let companies = self
            .companies
            .into_values()
            .iter()
            .map(|joined| joined.split(' ').map(|w| words.id(w)).collect())
            .collect();
        let last = self.last.into_values();
        let input = locality_order(&self.rows, &last, &self.sounds);
        // Rows and e-mail keys rewritten in that order.
        let mut rows = Vec::with_capacity(self.rows.len());
        let mut emails = String::with_capacity(self.emails.len());
        for &i in &input {
            let Some(&row) = self.rows.get(i as usize) else {
                continue;
            };
            let start = row.email as usize;
            let text = self
                .emails
                .get(start..start + usize::from(row.email_len))
                .unwrap_or_default();
            rows.push(Row {
                email: emails.len() as u64,
                ..row
            });
            emails.push_str(text);
        }
        let mut position = vec![0u32; input.len()];
        for (p, &i) in input.iter().enumerate() {
            if let Some(slot) = position.get_mut(i as usize) {
                *slot = p as u32;
            }
        }
        KeyTable {
            rows,
            emails,
            input,
            position,
            domains: self.domains.into_values(),
            first: self.first.into_values(),
            last,
            sounds: self.sounds,
            companies,
            words: words.into_values(),
        }
    }
}

/// The order rows are stored in: by how their surname sounds, then the
/// surname, then the first name, then as pushed. Most candidate pairs are
/// leads of one surname sound and initial (see [`blocking`](super::blocking)),
/// so a block's rows and e-mail keys sit side by side in memory; in push
/// order, comparing a pair read two cache lines from anywhere in the
/// table. Positions are mapped back to the order pushed at the API.
fn locality_order(rows: &[Row], last: &[Box<str>], sounds: &[(Box<str>, Box<str>)]) -> Vec<u32> {
    let mut by_sound: Vec<u32> = (0..last.len() as u32).collect();
    let sound = |id: u32| sounds.get(id as usize).map_or("", |s| &*s.0);
    let name = |id: u32| last.get(id as usize).map_or("", |s| &**s);
    by_sound.sort_unstable_by(|&x, &y| (sound(x), name(x)).cmp(&(sound(y), name(y))));
    let mut rank = vec![0u32; last.len()];
    for (r, &id) in by_sound.iter().enumerate() {
        if let Some(slot) = rank.get_mut(id as usize) {
            *slot = r as u32;
        }
    }
    let mut order: Vec<u32> = (0..rows.len() as u32).collect();
    order.sort_unstable_by_key(|&i| {
        let row = rows.get(i as usize);
        let last = row.and_then(|r| rank.get(r.last as usize)).copied();
        (last.unwrap_or(NONE), row.map_or(NONE, |r| r.first), i)
    });
    order
}

/// The [`MatchKeys`] of a batch, each distinct name, company word and
/// domain stored once.
///
/// A million `MatchKeys` are eight heap strings each, about 450 bytes a
/// lead; a table keeps a fixed-size row of ids per lead and the e-mail
/// keys in one buffer, about 86 MB for a million. Rows are stored with
/// leads of one surname sound side by side (faster comparison); every
/// index this API takes or returns is the order the leads were pushed in.
/// Build it with [`KeyTable::of_fields`], [`KeyTable::of`] or a
/// [`KeyTableBuilder`], and find its duplicates with
/// [`find_duplicates_in`](super::find_duplicates_in).
#[derive(Debug, Default)]
pub struct KeyTable {
    /// Rows in [`locality_order`], not in the order pushed.
    rows: Vec<Row>,
    emails: String,
    /// For each stored row, its index in the order pushed.
    input: Vec<u32>,
    /// For each index in the order pushed, where its row is stored.
    position: Vec<u32>,
    domains: Vec<Box<str>>,
    first: Vec<Box<str>>,
    last: Vec<Box<str>>,
    /// Double Metaphone codes of each last name, by its id.
    sounds: Vec<(Box<str>, Box<str>)>,
    /// Each company's tokens (sorted) as ids into `words`.
    companies: Vec<Box<[u32]>>,
    /// Company tokens by id.
    words: Vec<Box<str>>,
}

impl KeyTable {
    /// The table of keys already computed.
    pub fn of(keys: &[MatchKeys]) -> KeyTable {
        let mut builder = KeyTableBuilder::default();
        for k in keys {
            builder.push(k);
        }
        builder.finish()
    }

    /// Number of leads.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// `true` for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The keys of lead `i` as [`MatchKeys`] (`None` past the end).
    pub fn keys(&self, i: usize) -> Option<MatchKeys> {
        let row = self.row_of_input(i)?;
        let owned = |s: Option<&str>| s.map(str::to_owned);
        Some(MatchKeys {
            email: row.email().to_owned(),
            domain: owned(row.domain()),
            domain_kind: row.row.domain_kind,
            phone: owned(row.phone()),
            first_name: owned(row.first_name()),
            last_name: owned(row.last_name()),
            last_name_phonetic: row
                .last_name_sounds()
                .map(|(p, a)| (p.to_owned(), a.to_owned())),
            company: row.company().map(str::to_owned).collect(),
        })
    }

    /// The lead pushed `i`-th.
    pub(crate) fn row_of_input(&self, i: usize) -> Option<TableRow<'_>> {
        self.row(*self.position.get(i)? as usize)
    }

    /// The index (in the order pushed) of the lead stored at `position`.
    pub(crate) fn input_index(&self, position: usize) -> usize {
        self.input.get(position).map_or(position, |&i| i as usize)
    }

    /// A view of the lead stored at `i` (the table's own order: see
    /// [`locality_order`]; [`input_index`](Self::input_index) maps back).
    pub(crate) fn row(&self, i: usize) -> Option<TableRow<'_>> {
        self.rows.get(i).map(|row| TableRow { table: self, row })
    }

    /// Views of every lead, in order.
    pub(crate) fn rows(&self) -> impl Iterator<Item = TableRow<'_>> {
        self.rows.iter().map(|row| TableRow { table: self, row })
    }

    /// Number of distinct first names, last names and companies: the
    /// bounds of [`TableRow::ids`].
    pub(crate) fn distinct(&self) -> [usize; 3] {
        [self.first.len(), self.last.len(), self.companies.len()]
    }

    /// The first and last names by id.
    pub(crate) fn names(&self) -> [&[Box<str>]; 2] {
        [&self.first, &self.last]
    }

    /// Each company's tokens, by the company's id.
    pub(crate) fn company_tokens(&self) -> impl Iterator<Item = impl Iterator<Item = &str>> {
        self.companies
            .iter()
            .map(|c| c.iter().map(|&w| Self::word(&self.words, w)))
    }

    fn word(words: &[Box<str>], id: u32) -> &str {
        words.get(id as usize).map_or("", |w| &**w)
    }

    /// Bytes held, for reports.
    pub fn heap_bytes(&self) -> usize {
        let strings = |v: &[Box<str>]| v.iter().map(|s| s.len() + 16).sum::<usize>();
        self.rows.capacity() * std::mem::size_of::<Row>()
            + (self.input.capacity() + self.position.capacity()) * 4
            + self.emails.capacity()
            + strings(&self.domains)
            + strings(&self.first)
            + strings(&self.last)
            + strings(&self.words)
            + self
                .companies
                .iter()
                .map(|c| c.len() * 4 + 16)
                .sum::<usize>()
            + self
                .sounds
                .iter()
                .map(|(p, a)| p.len() + a.len() + 32)
                .sum::<usize>()
    }
}

/// One lead of a [`KeyTable`], read like its [`MatchKeys`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableRow<'t> {
    table: &'t KeyTable,
    row: &'t Row,
}

impl<'t> TableRow<'t> {
    fn text(values: &'t [Box<str>], id: u32) -> Option<&'t str> {
        values.get(id as usize).map(|s| &**s)
    }

    /// The company's token ids (empty when unknown).
    fn company_ids(&self) -> &'t [u32] {
        self.table
            .companies
            .get(self.row.company as usize)
            .map_or(&[][..], |c| &c[..])
    }

    /// Registrable domain of the e-mail.
    pub(crate) fn domain(&self) -> Option<&'t str> {
        Self::text(&self.table.domains, self.row.domain)
    }

    /// Ids of the first name, last name and company (`None`: no value);
    /// equal ids are equal values.
    pub(crate) fn ids(&self) -> [Option<u32>; 3] {
        [self.row.first, self.row.last, self.row.company].map(|id| (id != NONE).then_some(id))
    }

    /// The phone key as a number with its length (leading zeros count):
    /// equal for equal keys.
    pub(crate) fn phone_number(&self) -> Option<u64> {
        self.phone().map(|p| {
            p.bytes().fold(u64::from(self.row.phone_len), |n, d| {
                n * 10 + u64::from(d - b'0')
            })
        })
    }

    /// Id of the corporate domain (`None` for free-mail, disposable or
    /// none).
    pub(crate) fn corporate_domain_id(&self) -> Option<u32> {
        (self.row.domain_kind == DomainKind::Corporate && self.row.domain != NONE)
            .then_some(self.row.domain)
    }
}

impl KeyView for TableRow<'_> {
    fn email(&self) -> &str {
        let start = self.row.email as usize;
        self.table
            .emails
            .get(start..start + usize::from(self.row.email_len))
            .unwrap_or_default()
    }

    fn local_part(&self) -> &str {
        self.email()
            .get(..usize::from(self.row.local_len))
            .unwrap_or_default()
    }

    fn phone(&self) -> Option<&str> {
        let digits = self.row.phone.get(..usize::from(self.row.phone_len))?;
        (!digits.is_empty())
            .then(|| std::str::from_utf8(digits).ok())
            .flatten()
    }

    fn first_name(&self) -> Option<&str> {
        Self::text(&self.table.first, self.row.first)
    }

    fn last_name(&self) -> Option<&str> {
        Self::text(&self.table.last, self.row.last)
    }

    fn last_name_sounds(&self) -> Option<(&str, &str)> {
        self.table
            .sounds
            .get(self.row.last as usize)
            .map(|(p, a)| (&**p, &**a))
    }

    fn company(&self) -> impl Iterator<Item = &str> + Clone {
        let words = &self.table.words;
        self.company_ids().iter().map(|&w| KeyTable::word(words, w))
    }

    fn corporate_domain(&self) -> Option<&str> {
        match self.row.domain_kind {
            DomainKind::Corporate => self.domain(),
            _ => None,
        }
    }

    fn ids(&self) -> [Option<u32>; 3] {
        TableRow::ids(self)
    }

    fn email_hashes(&self) -> Option<(u32, u32)> {
        Some((self.row.email_hash, self.row.local_hash))
    }

    fn company_token_ids(&self) -> Option<(&[u32], &[Box<str>])> {
        Some((self.company_ids(), &self.table.words))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::compare;
    use crate::dedup::similarity::compare_views;
    use crate::{Email, FieldWarning, LeadFields, Phone, Region};

    fn fields(i: usize) -> LeadFields {
        let domain = ["gmail.com", "acme.co.uk", "mailinator.com", "globex.es"][i % 4];
        let mut f =
            LeadFields::new(Email::parse(&format!("user.{i}+x@{domain}")).expect("valid e-mail"));
        f.first_name = (!i.is_multiple_of(3)).then(|| ["José", "Ana", "Bob"][i % 3].to_owned());
        f.last_name = (!i.is_multiple_of(5)).then(|| ["Smith", "Peña", "O'Neil"][i % 3].to_owned());
        f.company = i
            .is_multiple_of(2)
            .then(|| ["ACME S.L.", "Norvex Systems Inc"][i % 4 / 2].to_owned());
        match i % 3 {
            0 => f.phone = Phone::parse("+34 612 345 678", Region::default()).ok(),
            1 => f.warnings.push(FieldWarning::kept(
                "phone",
                "invalid_phone",
                "phone is not a valid number",
                Some(format!("555-01{i:02}")),
            )),
            _ => {}
        }
        f
    }

    #[test]
    fn rows_read_back_as_the_keys_pushed_and_compare_alike() {
        // Enough leads for several threads, each with its own table.
        let all: Vec<LeadFields> = (0..25_000).map(fields).collect();
        let keys: Vec<MatchKeys> = all.iter().map(MatchKeys::of).collect();
        let table = KeyTable::of_fields(&all);
        assert_eq!(table.len(), keys.len());
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(table.keys(i).as_ref(), Some(k));
        }
        assert_eq!(table.keys(keys.len()), None);
        for (a, b) in [(0, 1), (3, 9), (2, 14), (10, 25), (7, 7)] {
            let row = |i| table.row_of_input(i).expect("row");
            let (ra, rb) = (row(a), row(b));
            let mut memo = crate::dedup::similarity::Memo::new();
            for _ in 0..2 {
                let remembered = compare_views(&ra, &rb, &mut memo);
                assert_eq!(remembered, compare(&keys[a], &keys[b]));
            }
        }
        // Distinct values are stored once.
        assert_eq!(table.distinct(), [2, 3, 2]);
        let mut one_by_one = KeyTableBuilder::default();
        for k in &keys[..100] {
            one_by_one.push(k);
        }
        let mut halves = KeyTableBuilder::default();
        for k in &keys[..40] {
            halves.push(k);
        }
        let mut second = KeyTableBuilder::default();
        for k in &keys[40..100] {
            second.push(k);
        }
        halves.append(second);
        let (a, b) = (one_by_one.finish(), halves.finish());
        assert_eq!(a.rows, b.rows);
        assert_eq!(a.emails, b.emails);
    }

    #[test]
    fn equal_ids_are_equal_values_and_phone_numbers_keep_leading_zeros() {
        let mut builder = KeyTableBuilder::default();
        // One lead with its phone kept as written, in two spellings.
        let with_phone = |text: &str| {
            let mut f = fields(1);
            f.warnings = vec![FieldWarning::kept(
                "phone",
                "invalid_phone",
                "phone is not a valid number",
                Some(text.into()),
            )];
            f
        };
        let (a, b) = (with_phone("012 345 678"), with_phone("12 345 678"));
        assert!(builder.push(&MatchKeys::of(&a)));
        assert!(builder.push(&MatchKeys::of(&b)));
        assert!(builder.push(&MatchKeys::of(&a)));
        let table = builder.finish();
        let row = |i| table.row_of_input(i).expect("row");
        assert_eq!(row(0).ids(), row(1).ids());
        assert_ne!(row(0).phone_number(), row(1).phone_number());
        assert_eq!(row(0).phone_number(), row(2).phone_number());
    }
}
