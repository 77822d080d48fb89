//! Blocking: which pairs of leads are worth comparing at all.
//!
//! # Design
//!
//! Comparing every pair of N leads is N²/2 comparisons (5·10¹¹ for a
//! million). Instead each lead gets a few *blocking keys*, and only leads
//! sharing a key are compared. The keys are chosen so that every
//! combination of evidence able to reach the default threshold (see
//! [`super::similarity`](mod@super::similarity)) shares at least one key:
//!
//! | key | catches |
//! | --- | --- |
//! | e-mail key | same address (Gmail dots, `+tags`) |
//! | phone | same phone, any name spelling |
//! | surname sound + first-name initial | name variants (`Smith`/`Smyth`, `Bob`/`Robert`) |
//! | company + surname sound | same person at the same company, any e-mail |
//! | company + first name | same, with a typo in the surname |
//! | corporate domain + first-name initial | `jsmith@acme.com` / `john.smith@acme.com` |
//! | e-mail local part with digits | `jsmith84@gmail.com` / `j.smith84@outlook.com` |
//!
//! First names go through the nickname table first, so `Bob` and `Robert`
//! share the initial `r`; surname sound is the Double Metaphone code
//! (primary and alternate).
//!
//! Keys are 64-bit hashes (a collision only adds a candidate; the
//! comparison itself reads the real keys). For each key kind the
//! `(hash, lead)` entries are sorted and equal runs form the blocks, which
//! needs no hash map and one allocation per kind.
//!
//! ## Oversized blocks
//!
//! A block of k leads costs k²/2 comparisons; a few huge blocks (`Smith J`,
//! a switchboard phone shared by a whole company, a bot re-submitting one
//! address) would make the batch quadratic again. A block larger than
//! [`MAX_BLOCK`] is therefore not compared exhaustively: its members are
//! sorted by (last name, first name, e-mail) and each is compared with the
//! next [`WINDOW`] members only (the *sorted neighbourhood* method). The cost
//! stays linear (k·WINDOW), and the pairs most likely to be duplicates
//! (closest spellings) are still compared; the trade-off is that two
//! duplicates far apart in that order inside a huge block are only found if
//! another key brings them together, or through clustering (A~B, B~C ⇒
//! A, C in one cluster).

use super::hash::compared_local_bytes;
use super::keys::Sounds;
use super::nicknames::canonical_first_names;
use super::parallel::parallel_chunks;
use super::similarity::distinctive_local_part;
use super::table::KeyTable;
use super::view::KeyView;

/// Largest block compared exhaustively.
pub const MAX_BLOCK: usize = 50;
/// Neighbours each member of an oversized block is compared with.
pub const WINDOW: usize = 16;

/// What blocking did, for tuning and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockingStats {
    /// Blocks with at least two leads.
    pub blocks: usize,
    /// Blocks larger than [`MAX_BLOCK`], compared by sorted neighbourhood.
    pub oversized_blocks: usize,
    /// Distinct candidate pairs produced (each compared once).
    pub candidate_pairs: usize,
}

/// The kinds of blocking key; the discriminant is mixed into the hash so
/// equal text in different kinds never shares a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Email = 1,
    Phone = 2,
    SoundAndInitial = 3,
    CompanyAndSound = 4,
    CompanyAndFirst = 5,
    DomainAndInitial = 6,
    LocalPart = 7,
    NameSounds = 8,
}

const KINDS: [Kind; 8] = [
    Kind::Email,
    Kind::Phone,
    Kind::SoundAndInitial,
    Kind::CompanyAndSound,
    Kind::CompanyAndFirst,
    Kind::DomainAndInitial,
    Kind::LocalPart,
    Kind::NameSounds,
];

/// FNV-1a over the parts (with a separator after each) followed by the
/// SplitMix64 finalizer, so nearby inputs spread over the whole range.
/// Deterministic across runs and platforms, unlike `std`'s `RandomState`.
struct KeyHasher(u64);

impl KeyHasher {
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new(kind: Kind) -> Self {
        KeyHasher(0xcbf2_9ce4_8422_2325 ^ (kind as u64))
    }

    fn part(mut self, bytes: &[u8]) -> Self {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(Self::PRIME);
        self
    }

    fn finish(self) -> u64 {
        let mut h = self.0;
        h ^= h >> 30;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 27;
        h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    }
}

fn hash(kind: Kind, parts: &[&[u8]]) -> u64 {
    parts
        .iter()
        .fold(KeyHasher::new(kind), |h, p| h.part(p))
        .finish()
}

fn hash_company<'a>(kind: Kind, company: impl Iterator<Item = &'a str>, last: &[u8]) -> u64 {
    company
        .fold(KeyHasher::new(kind), |h, t| h.part(t.as_bytes()))
        .part(last)
        .finish()
}

/// Calls `emit` with every key of `kind` for one lead (none when the lead
/// lacks the fields the kind needs).
fn keys_of<K: KeyView>(kind: Kind, k: &K, emit: &mut impl FnMut(u64)) {
    let sounds = || {
        k.last_name_sounds()
            .into_iter()
            .flat_map(|(primary, alternate)| {
                let alt = (!alternate.is_empty() && alternate != primary).then_some(alternate);
                (!primary.is_empty())
                    .then_some(primary)
                    .into_iter()
                    .chain(alt)
            })
    };
    let first = k.first_name();
    // Initials of the canonical forms, deduplicated (usually one).
    let initials = || {
        let mut seen = [0u8; 4];
        let mut n = 0;
        for name in first.into_iter().flat_map(canonical_first_names) {
            if let Some(&c) = name.as_bytes().first()
                && !seen[..n].contains(&c)
                && n < seen.len()
            {
                seen[n] = c;
                n += 1;
            }
        }
        (seen, n)
    };
    match kind {
        Kind::Email => emit(hash(kind, &[k.email().as_bytes()])),
        Kind::Phone => {
            if let Some(p) = k.phone() {
                emit(hash(kind, &[p.as_bytes()]));
            }
        }
        Kind::SoundAndInitial => {
            let (initials, n) = initials();
            for sound in sounds() {
                for c in &initials[..n] {
                    emit(hash(kind, &[sound.as_bytes(), &[*c]]));
                }
            }
        }
        Kind::CompanyAndSound => {
            if k.company().next().is_none() {
                return;
            }
            for sound in sounds() {
                emit(hash_company(kind, k.company(), sound.as_bytes()));
            }
        }
        Kind::CompanyAndFirst => {
            if k.company().next().is_none() {
                return;
            }
            for name in first.into_iter().flat_map(canonical_first_names) {
                emit(hash_company(kind, k.company(), name.as_bytes()));
            }
        }
        Kind::LocalPart => {
            if let Some(local) = distinctive_local_part(k.local_part()) {
                let mut h = KeyHasher::new(kind);
                for byte in compared_local_bytes(local) {
                    h = h.part(&[byte]);
                }
                emit(h.finish());
            }
        }
        // Keyed apart, by `name_sound_keys`.
        Kind::NameSounds => {}
        Kind::DomainAndInitial => {
            if let Some(domain) = k.corporate_domain() {
                let (initials, n) = initials();
                for c in &initials[..n] {
                    emit(hash(kind, &[domain.as_bytes(), &[*c]]));
                }
            }
        }
    }
}

/// Marks a lead's entry in a [`Kind::NameSounds`] block as keyed by its
/// names in swapped order.
const SWAPPED: u32 = 1 << 31;

/// A lead's [`Kind::NameSounds`] keys: the sounds of its last and first
/// name in that order, and in swapped order. A lead whose names were
/// swapped on a form has, as its swapped key, the other's plain key; the
/// block pairs only leads keyed in different orders (the same order is
/// [`Kind::SoundAndInitial`]'s work), so it costs about one candidate per
/// swapped lead.
fn name_sound_keys<K: KeyView>(k: &K, first_sounds: &mut Sounds) -> Option<(u64, u64)> {
    let (last, _) = k.last_name_sounds()?;
    let (first, _) = first_sounds.of(k.first_name()?);
    if first.is_empty() || last.is_empty() {
        return None;
    }
    let (first, last) = (first.as_bytes(), last.as_bytes());
    Some((
        hash(Kind::NameSounds, &[last, first]),
        hash(Kind::NameSounds, &[first, last]),
    ))
}

/// The candidate pairs of a batch, grouped by their first lead: the leads
/// compared with lead `a` are `others[offsets[a]..offsets[a + 1]]`, all
/// greater than `a`, sorted, each once. Four bytes a pair, where a list of
/// packed pairs took eight and twice that while it was built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Candidates {
    offsets: Vec<u64>,
    others: Vec<u32>,
}

impl Candidates {
    /// Number of pairs.
    pub(crate) fn len(&self) -> usize {
        self.others.len()
    }

    /// The pairs `(a, b)` whose first lead is in `leads`, in order.
    pub(crate) fn pairs(
        &self,
        leads: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (usize, usize)> + '_ {
        leads.flat_map(move |a| {
            let at = |i: usize| self.offsets.get(i).map_or(0, |&o| o as usize);
            self.others
                .get(at(a)..at(a + 1))
                .unwrap_or_default()
                .iter()
                .map(move |&b| (a, b as usize))
        })
    }

    /// Every pair, in order.
    #[cfg(test)]
    pub(crate) fn all(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.pairs(0..self.offsets.len().saturating_sub(1))
    }

    /// The leads cut into at most `parts` ranges with about as many pairs
    /// each, in order.
    pub(crate) fn split(&self, parts: usize) -> Vec<std::ops::Range<usize>> {
        let leads = self.offsets.len().saturating_sub(1);
        let per_part = (self.len() as u64).div_ceil(parts.max(1) as u64).max(1);
        let mut ranges = Vec::with_capacity(parts);
        let mut start = 0;
        for k in 1..=parts.max(1) {
            let end = if k == parts.max(1) {
                leads
            } else {
                self.offsets
                    .partition_point(|&o| o < per_part * k as u64)
                    .clamp(start, leads)
            };
            if end > start {
                ranges.push(start..end);
            }
            start = end;
        }
        ranges
    }
}

/// The blocks of one key kind with two leads or more, members in the order
/// they are compared (an oversized block sorted for its windows).
#[derive(Debug, Default)]
struct Blocks {
    members: Vec<u32>,
    /// Where each block starts in `members`; one more at the end.
    starts: Vec<u32>,
    /// [`Kind::NameSounds`]: members carry the [`SWAPPED`] bit and only
    /// leads keyed in different orders are paired.
    crossed: bool,
}

impl Blocks {
    /// The blocks of `kind` among `table`'s first `n` leads.
    fn of(kind: Kind, table: &KeyTable, n: usize) -> Blocks {
        let mut entries: Vec<(u64, u32)> = Vec::with_capacity(n);
        let crossed = kind == Kind::NameSounds;
        let mut first_sounds = Sounds::default();
        for (i, k) in table.rows().take(n).enumerate() {
            // `i < n <= u32::MAX`, so the cast is exact.
            let idx = i as u32;
            if !crossed {
                keys_of(kind, &k, &mut |h| entries.push((h, idx)));
            } else if idx < SWAPPED
                && let Some((plain, swapped)) = name_sound_keys(&k, &mut first_sounds)
            {
                entries.push((plain, idx));
                entries.push((swapped, idx | SWAPPED));
            }
        }
        entries.sort_unstable();
        entries.dedup();
        let mut blocks = Blocks {
            crossed,
            ..Blocks::default()
        };
        for block in entries.chunk_by(|x, y| x.0 == y.0) {
            // Sorted by lead, plain keys come first: a crossed block needs
            // both.
            let one_sided =
                crossed && (block[0].1 & SWAPPED) == (block[block.len() - 1].1 & SWAPPED);
            if block.len() < 2 || one_sided {
                continue;
            }
            let Ok(start) = u32::try_from(blocks.members.len()) else {
                break;
            };
            blocks.starts.push(start);
            let from = blocks.members.len();
            blocks.members.extend(block.iter().map(|e| e.1));
            if block.len() > MAX_BLOCK
                && let Some(members) = blocks.members.get_mut(from..)
            {
                // A crossed block's leads by their names as they would
                // be unswapped, so swapped twins end up side by side.
                let lead = |m: u32| {
                    if crossed {
                        (m & !SWAPPED) as usize
                    } else {
                        m as usize
                    }
                };
                fn names<R: KeyView>(r: &R, swapped: bool) -> (Option<&str>, Option<&str>, &str) {
                    if swapped {
                        (r.first_name(), r.last_name(), r.email())
                    } else {
                        (r.last_name(), r.first_name(), r.email())
                    }
                }
                members.sort_unstable_by(|&x, &y| {
                    let (i, j) = (lead(x), lead(y));
                    match (table.row(i), table.row(j)) {
                        // Ties in the order the leads were given, not the
                        // order the table stores them in.
                        (Some(a), Some(b)) => names(&a, crossed && x & SWAPPED != 0)
                            .cmp(&names(&b, crossed && y & SWAPPED != 0))
                            .then_with(|| table.input_index(i).cmp(&table.input_index(j)))
                            .then_with(|| x.cmp(&y)),
                        _ => x.cmp(&y),
                    }
                });
            }
        }
        blocks
            .starts
            .push(u32::try_from(blocks.members.len()).unwrap_or(u32::MAX));
        blocks
    }

    fn iter(&self) -> impl Iterator<Item = &[u32]> {
        self.starts
            .windows(2)
            .filter_map(|w| self.members.get(w[0] as usize..w[1] as usize))
    }
}

/// Calls `pair(a, b)` with `a < b` for every pair `blocks` propose,
/// duplicates included (a pair sharing two keys comes twice), in a fixed
/// order.
fn propose(blocks: &[Blocks], mut pair: impl FnMut(u32, u32)) {
    for kind in blocks {
        let crossed = kind.crossed;
        let mut emit = |x: u32, y: u32| {
            let (x, y) = if crossed {
                if (x ^ y) & SWAPPED == 0 {
                    return;
                }
                (x & !SWAPPED, y & !SWAPPED)
            } else {
                (x, y)
            };
            if x != y {
                pair(x.min(y), x.max(y));
            }
        };
        propose_kind(kind, &mut emit);
    }
}

/// [`propose`] for one kind's blocks, members as stored.
fn propose_kind(blocks: &Blocks, emit: &mut impl FnMut(u32, u32)) {
    for block in blocks.iter() {
        if block.len() <= MAX_BLOCK {
            for (x, a) in block.iter().enumerate() {
                for b in &block[x + 1..] {
                    emit(*a, *b);
                }
            }
        } else {
            for (x, a) in block.iter().enumerate() {
                for b in block.iter().skip(x + 1).take(WINDOW) {
                    emit(*a, *b);
                }
            }
        }
    }
}

/// The distinct candidate pairs among the leads of `table`.
///
/// Only the first `u32::MAX` leads take part: indices are stored as `u32`
/// to halve the memory of a million-lead batch. The blocks are walked
/// twice, once to count each lead's pairs and once to place them, so the
/// pairs are held once, at their exact size.
pub(crate) fn candidate_pairs(table: &KeyTable) -> (Candidates, BlockingStats) {
    let n = table.len().min(u32::MAX as usize);
    // Each kind's blocks once, the kinds shared among the threads.
    let blocks = parallel_chunks(&KINDS, 2, |kinds| {
        kinds
            .iter()
            .map(|&kind| Blocks::of(kind, table, n))
            .collect()
    });
    let mut stats = BlockingStats::default();
    for block in blocks.iter().flat_map(Blocks::iter) {
        stats.blocks += 1;
        if block.len() > MAX_BLOCK {
            stats.oversized_blocks += 1;
        }
    }
    let mut counts = vec![0u64; n + 1];
    propose(&blocks, |a, _| {
        if let Some(c) = counts.get_mut(a as usize) {
            *c += 1;
        }
    });
    // Counts to starts, in place.
    let mut total = 0u64;
    for c in &mut counts {
        let here = *c;
        *c = total;
        total += here;
    }
    let mut offsets = counts;
    let mut others = vec![0u32; total as usize];
    let mut next: Vec<u64> = offsets.clone();
    propose(&blocks, |a, b| {
        if let Some(at) = next.get_mut(a as usize) {
            if let Some(slot) = others.get_mut(*at as usize) {
                *slot = b;
            }
            *at += 1;
        }
    });
    drop((next, blocks));
    // Each lead's list sorted and deduplicated, moved down over the gaps.
    let mut write = 0usize;
    for a in 0..n {
        let (start, end) = (offsets[a] as usize, offsets[a + 1] as usize);
        offsets[a] = write as u64;
        let Some(list) = others.get_mut(start..end) else {
            continue;
        };
        list.sort_unstable();
        let mut last = None;
        for i in start..end {
            let b = others[i];
            if last != Some(b) {
                others[write] = b;
                write += 1;
                last = Some(b);
            }
        }
    }
    if let Some(end) = offsets.get_mut(n) {
        *end = write as u64;
    }
    others.truncate(write);
    others.shrink_to_fit();
    stats.candidate_pairs = others.len();
    (Candidates { offsets, others }, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Email, LeadFields, MatchKeys};

    /// The candidate pairs, by the leads' indices in `keys`.
    fn candidate_pairs(keys: &[MatchKeys]) -> (Vec<(usize, usize)>, BlockingStats) {
        let table = KeyTable::of(keys);
        let (candidates, stats) = super::candidate_pairs(&table);
        let mut pairs: Vec<(usize, usize)> = candidates
            .all()
            .map(|(a, b)| {
                let (x, y) = (table.input_index(a), table.input_index(b));
                (x.min(y), x.max(y))
            })
            .collect();
        pairs.sort_unstable();
        (pairs, stats)
    }

    fn lead(email: &str, first: &str, last: &str, company: Option<&str>) -> MatchKeys {
        let mut f = LeadFields::new(Email::parse(email).expect("valid test e-mail"));
        f.first_name = Some(first.into());
        f.last_name = Some(last.into());
        f.company = company.map(str::to_owned);
        MatchKeys::of(&f)
    }

    #[test]
    fn nickname_and_surname_typo_share_a_block() {
        let keys = [
            lead("rob@gmail.com", "Robert", "Smith", None),
            lead("bob@yahoo.com", "Bob", "Smyth", None),
            lead("ana@yahoo.com", "Ana", "Lopez", None),
        ];
        let (pairs, stats) = candidate_pairs(&keys);
        assert_eq!(pairs, [(0, 1)]);
        assert_eq!(stats.candidate_pairs, 1);
    }

    #[test]
    fn same_company_and_first_name_share_a_block_despite_a_surname_typo() {
        let keys = [
            lead("a@gmail.com", "Maria", "Fernandez", Some("Acme S.L.")),
            lead("b@yahoo.com", "Maria", "Hernandes", Some("ACME")),
        ];
        let (pairs, _) = candidate_pairs(&keys);
        assert_eq!(pairs.len(), 1);
    }

    #[test]
    fn oversized_blocks_stay_linear() {
        let keys: Vec<MatchKeys> = (0..1000)
            .map(|i| lead(&format!("same{i}@gmail.com"), "John", "Smith", None))
            .collect();
        let (pairs, stats) = candidate_pairs(&keys);
        // One block per Double Metaphone code of "smith" (SM0 and XMT).
        assert_eq!(stats.oversized_blocks, 2);
        assert!(pairs.len() <= 1000 * WINDOW, "{} pairs", pairs.len());
        assert!(pairs.windows(2).all(|w| w[0] < w[1]));
        assert!(pairs.iter().all(|(a, b)| a < b));
    }

    #[test]
    fn swapped_names_share_a_block_despite_a_typo() {
        let keys = [
            lead("c.burnell@gmail.com", "Burnell", "Charles", None),
            lead("cb93@yahoo.com", "Charles", "Burnel", None),
            lead("ana@yahoo.com", "Ana", "Lopez", None),
        ];
        let (pairs, _) = candidate_pairs(&keys);
        assert_eq!(pairs, [(0, 1)]);
    }

    #[test]
    fn the_swapped_names_key_pairs_only_leads_keyed_in_different_orders() {
        // Namesakes in the same order meet through the surname sound and
        // initial, not through the swapped-names key: in an oversized block
        // of those only the window pairs them.
        let mut keys: Vec<MatchKeys> = (0..200)
            .map(|i| lead(&format!("p{i}@gmail.com"), "John", "Smith", None))
            .collect();
        keys.push(lead("swapped@gmail.com", "Smith", "John", None));
        let table = KeyTable::of(&keys);
        let blocks = Blocks::of(Kind::NameSounds, &table, table.len());
        let mut pairs = Vec::new();
        propose(std::slice::from_ref(&blocks), |a, b| pairs.push((a, b)));
        let swapped = (0..table.len())
            .find(|&i| table.input_index(i) == 200)
            .expect("the swapped lead is in the table");
        assert!(!pairs.is_empty());
        assert!(
            pairs
                .iter()
                .all(|&(a, b)| a as usize == swapped || b as usize == swapped),
            "{pairs:?}"
        );
        assert!(pairs.len() <= 2 * WINDOW, "{} pairs", pairs.len());
    }

    #[test]
    fn no_pairs_for_zero_or_one_lead() {
        assert!(candidate_pairs(&[]).0.is_empty());
        assert!(
            candidate_pairs(&[lead("a@b.com", "A", "B", None)])
                .0
                .is_empty()
        );
    }
}
