//! How common each first name, last name and company is in a batch, for
//! frequency-based agreement weights.
//!
//! # Design
//!
//! In the Fellegi-Sunter model the evidence of an agreement is
//! `ln(m / u)`, where `u` is the chance that two *different* people agree on
//! the field. For a name that chance depends on the name: two records
//! sharing `John Smith` say little, two sharing `Xanbrasalley` say more.
//! With `f` the number of records of the batch carrying a value, `u` for
//! that value is about `f / N`; for the field as a whole (what the fixed
//! weights of [`super::similarity`](mod@super::similarity) stand for) it is
//! `F / N`, where `F = Σ f² / Σ f` is the frequency of the value of a
//! record picked at random (the *typical* frequency). The difference in
//! evidence between this value and a typical one is therefore
//!
//! ```text
//! rarity = SCALE · ln(F / f)        SCALE = 0.5, clamped per field:
//!          first name [-0.5, 0.5], last name [-0.5, 1.5], company [-0.5, 1.0]
//! ```
//!
//! positive for rare values and negative for common ones; a ratio of
//! counts, so a typical value stays at 0 whatever the batch size. `SCALE` is 0.5 because the fixed weights are about half
//! of the log-likelihood ratios they stand for (they also absorb the
//! correlation of the fields, which the model ignores).
//!
//! A pair that agrees on a field (equal, nickname, typo) gets the *smaller*
//! rarity of its two values, scaled by how strong the agreement is: a typo
//! of a common name (`Smitv`) is as common as the name it came from.
//!
//! ## Why the bonus is capped
//!
//! A count of 1 or 2 in a batch cannot tell a name that is rare in the
//! population from one that merely happens to be rare in this batch, and
//! the count includes the duplicates being looked for. With caps high
//! enough for a shared full name alone to pass the threshold (first name
//! 1.0, last name 2.5), the synthetic million-lead batch gained about 1
//! point of pair recall but lost 0.6 points of pair precision and 1 point
//! of cluster precision (namesakes with "unique" names). The caps keep the
//! largest name-only evidence (2 + 0.5 + 3.5 + 1.5 = 7.5) below the
//! default threshold (7.7): names alone stay undecided, and rarity tips
//! the pairs that also share a company, a domain or a handle.
//!
//! Batches with fewer than [`MIN_RECORDS`] values of a field are too small
//! to estimate frequencies; every rarity of that field is then `0.0` and
//! the comparison is the plain one of [`similarity()`](super::similarity()).

use super::hash::hash_parts;
use super::table::{KeyTable, TableRow};
use crate::matchkey::MatchKeys;

/// Fewest records with a value for a field's frequencies to count.
pub const MIN_RECORDS: u64 = 1_000;

/// Evidence points per unit of `ln(F / f)`: the fixed weights are about
/// half of the log-likelihood ratios they stand for.
const SCALE: f64 = 0.5;

/// Bounds and scale of the rarity of one field, in evidence points.
struct Bounds {
    scale: f64,
    min: f64,
    max: f64,
}

const FIRST: Bounds = Bounds {
    scale: SCALE,
    min: -0.5,
    max: 0.5,
};
const LAST: Bounds = Bounds {
    scale: SCALE,
    min: -0.5,
    max: 1.5,
};
const COMPANY: Bounds = Bounds {
    scale: SCALE,
    min: -0.5,
    max: 1.0,
};

/// How much rarer than typical a lead's first name, last name and company
/// are in its batch, as evidence points added when another lead agrees on
/// them (see the [module docs](self)). Positive for rare values, negative
/// for common ones, `0.0` for a typical or missing value.
///
/// Made by [`NameFrequencies::rarity`]; [`Rarity::NEUTRAL`] gives the
/// plain comparison of [`similarity()`](super::similarity()).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rarity {
    first_name: f64,
    last_name: f64,
    company: f64,
}

impl Rarity {
    /// No frequency information: every field weighs its fixed weight.
    pub const NEUTRAL: Rarity = Rarity {
        first_name: 0.0,
        last_name: 0.0,
        company: 0.0,
    };

    /// A rarity with these values (not clamped).
    pub(crate) fn new(first_name: f64, last_name: f64, company: f64) -> Self {
        Rarity {
            first_name,
            last_name,
            company,
        }
    }

    /// Rarity of the first name, in evidence points.
    pub fn first_name(&self) -> f64 {
        self.first_name
    }

    /// Rarity of the last name, in evidence points.
    pub fn last_name(&self) -> f64 {
        self.last_name
    }

    /// Rarity of the company, in evidence points.
    pub fn company(&self) -> f64 {
        self.company
    }
}

/// Value counts of one field.
#[derive(Debug, Clone, Default, PartialEq)]
struct Table {
    /// `(value hash, records)`, sorted by hash, each hash once.
    counts: Vec<(u64, u32)>,
    /// `Σ f² / Σ f`: how many records share the value of a random record.
    typical: f64,
    /// Records with a value.
    records: u64,
}

impl Table {
    /// The table of the distinct values of a field, given each one's hash
    /// and how many records carry it.
    fn of_values(hashes: impl Iterator<Item = u64>, records_of: &[u32]) -> Table {
        let mut counts: Vec<(u64, u32)> = hashes
            .zip(records_of)
            .filter(|(_, n)| **n > 0)
            .map(|(h, n)| (h, *n))
            .collect();
        counts.sort_unstable();
        // Two values with one hash count as one value, as a lookup by hash
        // would see them.
        counts.dedup_by(|next, kept| {
            let same = next.0 == kept.0;
            if same {
                kept.1 = kept.1.saturating_add(next.1);
            }
            same
        });
        let (mut sum_sq, mut records) = (0f64, 0u64);
        for &(_, f) in &counts {
            sum_sq += f64::from(f) * f64::from(f);
            records += u64::from(f);
        }
        let typical = if records == 0 {
            0.0
        } else {
            sum_sq / records as f64
        };
        Table {
            counts,
            typical,
            records,
        }
    }

    /// Records of the batch with this value.
    fn count(&self, hash: u64) -> u32 {
        self.counts
            .binary_search_by_key(&hash, |e| e.0)
            .ok()
            .and_then(|i| self.counts.get(i))
            .map_or(0, |e| e.1)
    }

    /// The rarity of a value carried by `count` records (at least one: the
    /// lead itself).
    /// `ln(F / f)` unscaled and unclamped (0 in a batch too small to
    /// count), for the learned weights' term-frequency adjustment.
    fn term(&self, count: u32) -> f32 {
        if self.records < MIN_RECORDS || self.typical <= 0.0 || count == 0 {
            return 0.0;
        }
        let t = (self.typical / f64::from(count)).ln();
        if t.is_finite() { t as f32 } else { 0.0 }
    }

    fn rarity(&self, count: u32, bounds: &Bounds) -> f64 {
        if self.records < MIN_RECORDS || self.typical <= 0.0 {
            return 0.0;
        }
        let f = f64::from(count.max(1));
        let r = bounds.scale * (self.typical / f).ln();
        if r.is_finite() {
            r.clamp(bounds.min, bounds.max)
        } else {
            0.0
        }
    }
}

/// How many leads of a batch carry each first name, last name and company
/// (normalized as in [`MatchKeys`]), for frequency-based weights.
///
/// [`find_duplicates`](super::find_duplicates) builds one for its batch;
/// build one yourself to compare single leads against a batch with
/// [`similarity_with`](super::similarity_with).
///
/// # Example
///
/// ```
/// use lead_core::{Email, LeadFields, MatchKeys};
/// use lead_core::dedup::{NameFrequencies, similarity, similarity_with};
///
/// let lead = |i: usize, first: &str, last: &str| {
///     let mut f = LeadFields::new(Email::parse(&format!("p{i}@example.com")).unwrap());
///     f.first_name = Some(first.into());
///     f.last_name = Some(last.into());
///     MatchKeys::of(&f)
/// };
/// // A batch where "Smith" is everywhere and "Xanbrasalley" is not.
/// let mut batch: Vec<MatchKeys> = (0..3_000).map(|i| lead(i, "John", "Smith")).collect();
/// batch.push(lead(3_000, "Sean", "Xanbrasalley"));
/// batch.push(lead(3_001, "Sean", "Xanbrasalley"));
/// let freq = NameFrequencies::of(&batch);
/// let rare = freq.rarity(&batch[3_000]);
/// let common = freq.rarity(&batch[0]);
/// assert!(rare.last_name() > 0.0 && common.last_name() <= 0.0);
///
/// let plain = similarity(&batch[3_000], &batch[3_001]).total;
/// let weighted = similarity_with(&batch[3_000], &batch[3_001], &rare, &rare).total;
/// assert!(weighted > plain);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NameFrequencies {
    first: Table,
    last: Table,
    company: Table,
}

/// The hashes of the three counted values of a lead.
fn value_hashes(k: &MatchKeys) -> [Option<u64>; 3] {
    [
        k.first_name.as_deref().map(|s| hash_parts([s])),
        k.last_name.as_deref().map(|s| hash_parts([s])),
        (!k.company.is_empty()).then(|| hash_parts(k.company.iter().map(String::as_str))),
    ]
}

/// A value per distinct first name, last name and company of a
/// [`KeyTable`] (its `ln(F / f)` term, or its rarity), read per lead.
#[derive(Debug, Clone, Default)]
pub(crate) struct PerValue<T> {
    by_id: [Vec<T>; 3],
}

impl<T: Copy + Default> PerValue<T> {
    /// The values of a lead's first name, last name and company (the
    /// default where it has none).
    pub(crate) fn of(&self, row: &TableRow<'_>) -> [T; 3] {
        let ids = row.ids();
        [0, 1, 2].map(|c| {
            ids[c]
                .and_then(|id| self.by_id[c].get(id as usize))
                .copied()
                .unwrap_or_default()
        })
    }
}

impl PerValue<f64> {
    /// The [`Rarity`] of a lead of the table these rarities are of.
    pub(crate) fn rarity(&self, row: &TableRow<'_>) -> Rarity {
        let [first, last, company] = self.of(row);
        Rarity::new(first, last, company)
    }
}

impl NameFrequencies {
    /// Counts the values of a batch.
    pub fn of(keys: &[MatchKeys]) -> Self {
        Self::count(&KeyTable::of(keys)).0
    }

    /// The rarity of each distinct value of the table: what the fixed
    /// weights use (`rarities.of(row)` is `freq.rarity` of the row's keys).
    pub(crate) fn rarities(table: &KeyTable) -> PerValue<f64> {
        let (freq, records_of) = Self::count(table);
        let tables = [
            (&freq.first, &FIRST),
            (&freq.last, &LAST),
            (&freq.company, &COMPANY),
        ];
        PerValue {
            by_id: [0, 1, 2].map(|c| {
                let (t, bounds) = tables[c];
                records_of[c].iter().map(|n| t.rarity(*n, bounds)).collect()
            }),
        }
    }

    /// Each distinct value's `ln(F / f)`: the learned weights'
    /// term-frequency adjustment.
    pub(crate) fn terms(table: &KeyTable) -> PerValue<f32> {
        let (freq, records_of) = Self::count(table);
        let tables = [&freq.first, &freq.last, &freq.company];
        PerValue {
            by_id: [0, 1, 2].map(|c| records_of[c].iter().map(|n| tables[c].term(*n)).collect()),
        }
    }

    /// The tables of a batch, and how many leads carry each distinct value
    /// (by id).
    fn count(table: &KeyTable) -> (Self, [Vec<u32>; 3]) {
        let mut records_of = table.distinct().map(|n| vec![0u32; n]);
        for row in table.rows() {
            for (c, id) in row.ids().into_iter().enumerate() {
                if let Some(n) = id.and_then(|id| records_of[c].get_mut(id as usize)) {
                    *n = n.saturating_add(1);
                }
            }
        }
        let [first, last] = table.names();
        let single =
            |v: &[Box<str>]| -> Vec<u64> { v.iter().map(|s| hash_parts([&**s])).collect() };
        let companies = table.company_tokens().map(hash_parts);
        let freq = NameFrequencies {
            first: Table::of_values(single(first).into_iter(), &records_of[0]),
            last: Table::of_values(single(last).into_iter(), &records_of[1]),
            company: Table::of_values(companies, &records_of[2]),
        };
        (freq, records_of)
    }

    fn rarity_from(&self, hashes: &[Option<u64>; 3], counts: [u32; 3]) -> Rarity {
        let r = |h: Option<u64>, table: &Table, count: u32, bounds: &Bounds| {
            h.map_or(0.0, |_| table.rarity(count, bounds))
        };
        Rarity {
            first_name: r(hashes[0], &self.first, counts[0], &FIRST),
            last_name: r(hashes[1], &self.last, counts[1], &LAST),
            company: r(hashes[2], &self.company, counts[2], &COMPANY),
        }
    }

    /// The rarity of a lead's values in this batch. A value the batch does
    /// not have counts as carried by one record (the lead itself).
    pub fn rarity(&self, keys: &MatchKeys) -> Rarity {
        let h = value_hashes(keys);
        let count = |h: Option<u64>, t: &Table| h.map_or(0, |h| t.count(h));
        let counts = [
            count(h[0], &self.first),
            count(h[1], &self.last),
            count(h[2], &self.company),
        ];
        self.rarity_from(&h, counts)
    }

    /// `Σ f² / Σ f` of first names, last names and companies: how many
    /// leads share the value of a lead picked at random (`0.0` for a field
    /// nobody has). A value this common has a rarity of 0.
    pub fn typical_counts(&self) -> [f64; 3] {
        [self.first.typical, self.last.typical, self.company.typical]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::hash::{hash_bytes, hash_value};
    use crate::{Email, LeadFields};

    fn lead(i: usize, first: &str, last: Option<&str>, company: Option<&str>) -> MatchKeys {
        let mut f =
            LeadFields::new(Email::parse(&format!("p{i}@example.com")).expect("valid test e-mail"));
        f.first_name = Some(first.into());
        f.last_name = last.map(str::to_owned);
        f.company = company.map(str::to_owned);
        MatchKeys::of(&f)
    }

    fn batch() -> Vec<MatchKeys> {
        (0..4_000)
            .map(|i| {
                let last = ["Smith", "Jones", "Brown", "Lopez"][i % 4];
                let last = if i % 997 == 0 { None } else { Some(last) };
                let last = if i == 5 { Some("Xanbrasalley") } else { last };
                lead(i, ["Ana", "John"][i % 2], last, Some("Acme Inc"))
            })
            .collect()
    }

    #[test]
    fn hashing_bytes_is_hashing_the_text() {
        for text in ["", "smith", "acme widgets", "peña"] {
            assert_eq!(hash_bytes(text.bytes()), hash_value(text));
        }
        assert_ne!(hash_value("smith"), hash_value("smyth"));
    }

    #[test]
    fn batch_rarities_equal_one_by_one_lookups() {
        let keys = batch();
        let table = KeyTable::of(&keys);
        let rarities = NameFrequencies::rarities(&table);
        let freq = NameFrequencies::of(&keys);
        for (i, k) in keys.iter().enumerate() {
            let row = table.row_of_input(i).expect("row");
            assert_eq!(freq.rarity(k), rarities.rarity(&row));
        }
        assert_eq!(freq, NameFrequencies::count(&table).0);
    }

    #[test]
    fn rare_values_are_positive_common_ones_not_and_bounds_hold() {
        let keys = batch();
        let freq = NameFrequencies::of(&keys);
        let rare = freq.rarity(&keys[5]);
        let common = freq.rarity(&keys[1]);
        assert_eq!(rare.last_name(), LAST.max);
        assert!(common.last_name() < 0.1, "{common:?}");
        // One company for everyone: as common as can be.
        assert_eq!(common.company(), 0.0);
        let unknown = freq.rarity(&lead(9, "Zed", Some("Nobody"), None));
        assert_eq!(unknown.company(), 0.0);
        assert!(unknown.first_name() <= FIRST.max && unknown.first_name() > 0.0);
        let no_last = freq.rarity(&keys[0]);
        assert_eq!(no_last.last_name(), 0.0);
    }

    #[test]
    fn small_or_empty_batches_are_neutral() {
        let keys: Vec<MatchKeys> = batch().into_iter().take(50).collect();
        let table = KeyTable::of(&keys);
        let rarities = NameFrequencies::rarities(&table);
        assert!(table.rows().all(|r| rarities.rarity(&r) == Rarity::NEUTRAL));
        let freq = NameFrequencies::of(&keys);
        assert_eq!(freq.rarity(&keys[5]), Rarity::NEUTRAL);
        let empty = NameFrequencies::of(&[]);
        assert_eq!(empty.typical_counts(), [0.0; 3]);
        assert_eq!(empty.rarity(&keys[0]), Rarity::NEUTRAL);
    }
}
