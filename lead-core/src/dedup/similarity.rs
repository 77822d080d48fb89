//! How alike two leads are, field by field, combined into one number in 0-1.
//!
//! # Design
//!
//! Each field comparator turns the two values into *evidence*: a log-odds
//! weight that is positive when the values agree ("same person is more
//! likely") and negative when they clearly disagree, in the spirit of the
//! Fellegi-Sunter record-linkage model. A missing value on either side adds
//! exactly `0.0`: it is neither agreement nor disagreement. The weights are
//! summed and mapped through a logistic curve:
//!
//! ```text
//! similarity = 1 / (1 + e^-(evidence - BIAS))      BIAS = 6.0
//! ```
//!
//! so 0.85 (the default threshold) needs about 7.7 points of evidence and
//! 0.95 about 8.9. The weights were chosen so that:
//!
//! | evidence | points | similarity |
//! | --- | --- | --- |
//! | same e-mail key | 10 + anything | ≥ 0.95 (floor) |
//! | same phone + same first and last name | 6 + 2 + 3.5 = 11.5 | 0.996 |
//! | same phone + same first name only | 6 + 2 = 8 | 0.88 |
//! | same full name + same company, e-mail elsewhere | 2 + 3.5 + 3.3 = 8.8 | 0.94 |
//! | same full name + same corporate domain | 2 + 3.5 + 2.5 = 8 | 0.88 |
//! | same surname + same company and its domain | 3.5 + 3.3 + 0.5 = 7.3 | 0.79 |
//! | nickname + surname typo + same company | 1.8 + 2.8 + 3.3 = 7.9 | 0.87 |
//! | same handle with digits at another provider + same surname | 5 + 3.5 = 8.5 | 0.92 |
//! | same first name + surname with the second surname dropped + same company | 2 + 2.8 + 3.3 = 8.1 | 0.89 |
//! | same first name + same company, one surname missing but found in its e-mail (`ana.lopez84@`) | 2 + 2.5 + 3.3 = 7.8 | 0.86 |
//! | same full name only | 5.5 | 0.38 |
//! | same corporate domain + same first name | 2.5 + 2 = 4.5 | 0.18 |
//! | same phone, different names | 6 - 2.5 - 3.5 = 0 | 0.002 |
//!
//! An equal normalized e-mail is decisive (SPEC: a lead whose e-mail already
//! exists is merged at once), so it also sets a floor of 0.95 on the result.
//!
//! A lead that gives no first or last name often still shows it in its
//! e-mail (`lopez.ana84@`, `ana.lopez@acme.com`): a name of the other lead
//! found there counts as a (weaker) agreement; not found is no evidence.
//!
//! [`similarity_with`] adds frequency-based weights: agreeing on a rare
//! name or company counts more, on a common one less (see
//! [`frequency`](super::frequency); [`find_duplicates`](super::find_duplicates)
//! uses it with the frequencies of its batch). Names alone still stay
//! below the threshold.
//!
//! Every comparator is symmetric by construction: string comparisons order
//! their two arguments before comparing, and the sum runs over the fields in
//! a fixed order, so `similarity(a, b) == similarity(b, a)` bit for bit.

use serde::{Deserialize, Serialize};

use super::frequency::Rarity;
use super::hash::compared_local_bytes;
use super::nicknames::are_nicknames;
use super::view::KeyView;
use crate::matchkey::MatchKeys;

/// Evidence needed for a similarity of 0.5; see the module docs.
pub(crate) const BIAS: f64 = 6.0;
/// Lowest similarity of two leads with the same normalized e-mail.
pub const SAME_EMAIL_FLOOR: f64 = 0.95;

const EMAIL_EQUAL: f64 = 10.0;
const LOCAL_PART_EQUAL_DISTINCTIVE: f64 = 5.0;
const LOCAL_PART_EQUAL: f64 = 1.0;
const PHONE_EQUAL: f64 = 6.0;
/// One or two digits apart: a typo of the same number, or a colleague's
/// extension; weaker than equal, still agreement.
const PHONE_CLOSE: f64 = 2.0;
const PHONE_DIFFERENT: f64 = -1.0;
const FIRST_EQUAL: f64 = 2.0;
const FIRST_NICKNAME: f64 = 1.8;
const FIRST_CLOSE: f64 = 1.2;
const FIRST_NEAR: f64 = 0.4;
const FIRST_INITIAL: f64 = 0.3;
const FIRST_DIFFERENT: f64 = -2.5;
/// The first name of one lead starting the e-mail of another that gives
/// none.
const FIRST_IN_EMAIL: f64 = 1.5;
const LAST_EQUAL: f64 = 3.5;
/// The last name of one lead inside the e-mail of another that gives none.
const LAST_IN_EMAIL: f64 = 2.5;
/// Shortest start of a (folded, double) last name looked for in an e-mail.
const LAST_IN_EMAIL_MIN_PREFIX: usize = 5;
const LAST_CLOSE: f64 = 2.8;
const LAST_PREFIX: f64 = 2.8;
const LAST_NEAR: f64 = 1.0;
/// Two typos apart, or two similar names: no evidence either way.
const LAST_UNCLEAR: f64 = 0.0;
const LAST_DIFFERENT: f64 = -3.5;
const COMPANY_EQUAL: f64 = 3.3;
const COMPANY_CLOSE: f64 = 2.9;
const COMPANY_PARTIAL: f64 = 1.0;
const COMPANY_DIFFERENT: f64 = -1.0;
const DOMAIN_EQUAL: f64 = 2.5;
/// A shared corporate domain when the company already agrees: mostly the
/// same fact (the company's domain) counted twice, so it adds little.
const DOMAIN_EQUAL_SAME_COMPANY: f64 = 0.5;

/// The fields two leads are compared on, in the order of
/// [`Comparison::levels`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Normalized e-mail key.
    Email,
    /// The part before `@` when the e-mail keys differ.
    EmailLocalPart,
    /// The phone's digits ([`phone_key`](crate::phone_key)).
    Phone,
    /// First name.
    FirstName,
    /// Last name.
    LastName,
    /// Company tokens.
    Company,
    /// Corporate e-mail domain.
    CorporateDomain,
}

impl Field {
    /// Every field, in comparison order.
    pub const ALL: [Field; FIELDS] = [
        Field::Email,
        Field::EmailLocalPart,
        Field::Phone,
        Field::FirstName,
        Field::LastName,
        Field::Company,
        Field::CorporateDomain,
    ];

    /// How many levels the field's comparison has, [`level::MISSING`]
    /// included.
    pub const fn levels(self) -> usize {
        match self {
            Field::Email | Field::CorporateDomain => 3,
            Field::Phone => 4,
            Field::EmailLocalPart => 5,
            Field::Company => 5,
            Field::FirstName | Field::LastName => 8,
        }
    }
}

/// Number of [`Field`]s.
pub const FIELDS: usize = 7;
/// Most levels a field has.
pub const MAX_LEVELS: usize = 8;

/// Slots per field in a [`Memo`] (a power of two).
const MEMO_SLOTS: usize = 1 << 16;

/// Remembers the last comparisons of first names, last names and company
/// tokens by their ids ([`KeyView::ids`], [`KeyView::company_token_ids`]),
/// in a fixed number of slots (a slot keeps the last pair that hashed to
/// it). A batch compares the same few thousand names and company words
/// over millions of pairs (a company comparison can cost a dozen
/// Jaro-Winkler calls); a hit costs one lookup. The comparators are pure
/// and symmetric, so remembering changes no result.
pub(crate) struct Memo {
    /// First-name and last-name comparisons, by their pair of ids.
    names: [Vec<(u64, Compared)>; 2],
    /// Whether two company tokens are alike, by their pair of ids.
    tokens: Vec<(u64, bool)>,
}

/// An empty memo slot: no pair of ids packs to this key.
const MEMO_EMPTY: u64 = u64::MAX;

impl Memo {
    /// A memo with [`MEMO_SLOTS`] slots per field.
    pub(crate) fn new() -> Self {
        let names = || vec![(MEMO_EMPTY, Compared::MISSING); MEMO_SLOTS];
        Memo {
            names: [names(), names()],
            tokens: vec![(MEMO_EMPTY, false); MEMO_SLOTS * 4],
        }
    }

    /// A memo that remembers nothing (single comparisons).
    pub(crate) fn none() -> Self {
        Memo {
            names: [Vec::new(), Vec::new()],
            tokens: Vec::new(),
        }
    }

    /// The value for the pair of ids `a`, `b` (either order) in `slots`,
    /// remembered or computed and remembered.
    fn remember<T: Copy>(slots: &mut [(u64, T)], a: u32, b: u32, compute: impl FnOnce() -> T) -> T {
        let key = (u64::from(a.min(b)) << 32) | u64::from(a.max(b));
        let at = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize % slots.len().max(1);
        match slots.get_mut(at) {
            Some(slot) if key != MEMO_EMPTY => {
                if slot.0 != key {
                    *slot = (key, compute());
                }
                slot.1
            }
            _ => compute(),
        }
    }

    /// Whether company tokens of ids `a` and `b` are alike, remembered or
    /// computed.
    fn tokens_alike(&mut self, a: u32, b: u32, compute: impl FnOnce() -> bool) -> bool {
        Self::remember(&mut self.tokens, a, b, compute)
    }

    /// The comparison of `field` (0 first name, 1 last name)
    /// between values of ids `a` and `b`, remembered or computed.
    fn get(
        &mut self,
        field: usize,
        ids: (Option<u32>, Option<u32>),
        compute: impl FnOnce() -> Compared,
    ) -> Compared {
        match (ids, self.names.get_mut(field)) {
            ((Some(a), Some(b)), Some(slots)) => Self::remember(slots, a, b, compute),
            _ => compute(),
        }
    }
}

impl KeyView for MatchKeys {
    fn email(&self) -> &str {
        &self.email
    }
    fn phone(&self) -> Option<&str> {
        self.phone.as_deref()
    }
    fn first_name(&self) -> Option<&str> {
        self.first_name.as_deref()
    }
    fn last_name(&self) -> Option<&str> {
        self.last_name.as_deref()
    }
    fn last_name_sounds(&self) -> Option<(&str, &str)> {
        self.last_name_phonetic
            .as_ref()
            .map(|(p, a)| (p.as_str(), a.as_str()))
    }
    fn company(&self) -> impl Iterator<Item = &str> + Clone {
        self.company.iter().map(String::as_str)
    }
    fn corporate_domain(&self) -> Option<&str> {
        MatchKeys::corporate_domain(self)
    }
}

/// Comparison levels: what a field's comparator found, best first.
///
/// Level numbers are per field; `0` ([`MISSING`](level::MISSING)) always
/// means "no evidence" (a value missing on either side, a role address)
/// and `1` ([`EQUAL`](level::EQUAL)) always means equal. The fixed weights
/// of [`similarity()`] and the learned ones of
/// [`MatchModel`](super::MatchModel) both map a level to a weight.
pub mod level {
    /// No evidence either way.
    pub const MISSING: u8 = 0;
    /// Equal values.
    pub const EQUAL: u8 = 1;
    /// E-mail keys differ.
    pub const EMAIL_DIFFERENT: u8 = 2;
    /// Local parts equal (ignoring `.`, `_`, `-`), without digits.
    pub const LOCAL_PLAIN: u8 = 2;
    /// Local parts differ.
    pub const LOCAL_DIFFERENT: u8 = 3;
    /// Local parts equal, without digits, made of a name of either lead
    /// (`matthewc`, `bking`): mostly the names again, which namesakes at
    /// other providers share too.
    pub const LOCAL_NAME: u8 = 4;
    /// Phones one or two digits apart.
    pub const PHONE_CLOSE: u8 = 2;
    /// Phones differ.
    pub const PHONE_DIFFERENT: u8 = 3;
    /// Names: a nickname (first name) or the first of a double surname
    /// (last name).
    pub const NAME_ALIAS: u8 = 2;
    /// Names one typo apart (Jaro-Winkler ≥ 0.92, or sounding alike).
    pub const NAME_CLOSE: u8 = 3;
    /// Names rather alike (Jaro-Winkler ≥ 0.85).
    pub const NAME_NEAR: u8 = 4;
    /// Barely informative: an initial (first name), two typos apart (last
    /// name).
    pub const NAME_WEAK: u8 = 5;
    /// Missing on one side, found in that lead's e-mail.
    pub const NAME_IN_EMAIL: u8 = 6;
    /// Names differ.
    pub const NAME_DIFFERENT: u8 = 7;
    /// Companies equal up to typos.
    pub const COMPANY_CLOSE: u8 = 2;
    /// Companies share most words.
    pub const COMPANY_PARTIAL: u8 = 3;
    /// Companies differ.
    pub const COMPANY_DIFFERENT: u8 = 4;
    /// Corporate domains differ.
    pub const DOMAIN_DIFFERENT: u8 = 2;
}

/// What one field's comparator found: a [`level`] and, for people, how
/// alike the values are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Compared {
    pub(crate) level: u8,
    pub(crate) similarity: Option<f64>,
}

impl Compared {
    const MISSING: Compared = Compared {
        level: level::MISSING,
        similarity: None,
    };

    fn new(level: u8, similarity: f64) -> Self {
        Compared {
            level,
            similarity: Some(similarity),
        }
    }
}

/// Two leads compared field by field, before any weighting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// The [`level`] of each [`Field`], in [`Field::ALL`] order.
    pub levels: [u8; FIELDS],
    /// How alike each field's values are, 0-1, `None` when missing.
    pub similarities: [Option<f64>; FIELDS],
}

impl Comparison {
    /// The level of one field.
    pub fn level(&self, field: Field) -> u8 {
        self.levels
            .get(field as usize)
            .copied()
            .unwrap_or(level::MISSING)
    }

    /// How many fields besides the e-mail key agree ([`agrees`]), a local
    /// part made of the names and a corporate domain beside an agreeing
    /// company not counted apart (they repeat the names and the company).
    pub fn agreeing_fields(&self) -> usize {
        let levels = model_levels(&self.levels);
        Field::ALL
            .iter()
            .filter(|f| **f != Field::Email)
            .filter(|f| agrees(**f, levels[**f as usize]))
            .count()
    }
}

/// Whether a field's level is agreement (equal, alias, typo, near, found in
/// the e-mail, partly shared company), whatever weight a model gives it.
pub fn agrees(field: Field, lvl: u8) -> bool {
    match (field, lvl) {
        (_, level::MISSING) => false,
        (_, level::EQUAL) => true,
        (Field::EmailLocalPart, l) => l == level::LOCAL_PLAIN || l == level::LOCAL_NAME,
        (Field::Phone, l) => l == level::PHONE_CLOSE,
        (Field::FirstName | Field::LastName, l) => matches!(
            l,
            level::NAME_ALIAS | level::NAME_CLOSE | level::NAME_NEAR | level::NAME_IN_EMAIL
        ),
        (Field::Company, l) => l == level::COMPANY_CLOSE || l == level::COMPANY_PARTIAL,
        (Field::Email | Field::CorporateDomain, _) => false,
    }
}

/// The levels as the learned model reads them: evidence that mostly
/// repeats another field's is taken as no evidence, because the model
/// multiplies fields as if independent and random pairs (where `u` comes
/// from) almost never show the repetition. A local part made of the names
/// repeats the names; a shared corporate domain repeats an agreeing
/// company.
pub fn model_levels(levels: &[u8; FIELDS]) -> [u8; FIELDS] {
    let mut out = *levels;
    let local = Field::EmailLocalPart as usize;
    if out[local] == level::LOCAL_NAME {
        out[local] = level::MISSING;
    }
    let company = out[Field::Company as usize];
    let domain = Field::CorporateDomain as usize;
    if out[domain] == level::EQUAL && (company == level::EQUAL || company == level::COMPANY_CLOSE) {
        out[domain] = level::MISSING;
    }
    out
}

/// Compares two leads field by field (symmetric: `compare(a, b)` equals
/// `compare(b, a)`).
///
/// First and last names typed into each other's boxes (`Smith John` /
/// `John Smith`) are compared crosswise when that agrees better.
pub fn compare(a: &MatchKeys, b: &MatchKeys) -> Comparison {
    compare_views(a, b, &mut Memo::none())
}

/// [`compare`] of any two [`KeyView`]s, names and companies looked up in
/// `memo` first.
pub(crate) fn compare_views<K: KeyView>(a: &K, b: &K, memo: &mut Memo) -> Comparison {
    let hashes = (a.email_hashes(), b.email_hashes());
    let same_email = match hashes {
        (Some((x, _)), Some((y, _))) if x != y => false,
        _ => a.email() == b.email(),
    };
    let email = if same_email {
        Compared::new(level::EQUAL, 1.0)
    } else {
        Compared::new(level::EMAIL_DIFFERENT, 0.0)
    };
    let mut local = match hashes {
        _ if same_email => Compared::MISSING,
        (Some((_, x)), Some((_, y))) if x != y => Compared::new(level::LOCAL_DIFFERENT, 0.0),
        _ => compare_local_parts(a.local_part(), b.local_part()),
    };
    if local.level == level::LOCAL_PLAIN && local_part_has_a_name(a.local_part(), a, b) {
        local.level = level::LOCAL_NAME;
    }
    let phone = match (a.phone(), b.phone()) {
        (Some(x), Some(y)) => compare_phones(x, y),
        _ => Compared::MISSING,
    };
    let (first, last) = compare_names(a, b, memo);
    let company = match (a.company_token_ids(), b.company_token_ids()) {
        // Rows of one table: tokens by id, their likeness remembered.
        (Some((ta, words)), Some((tb, _))) => compare_tokens(ta, tb, |x, y| {
            x == y
                || memo.tokens_alike(x, y, || {
                    let word = |t: u32| words.get(t as usize).map_or("", |w| &**w);
                    tokens_alike(word(x), word(y))
                })
        }),
        _ => compare_companies(a.company(), b.company()),
    };
    let domain = match (a.corporate_domain(), b.corporate_domain()) {
        (Some(x), Some(y)) if x == y => Compared::new(level::EQUAL, 1.0),
        (Some(_), Some(_)) => Compared::new(level::DOMAIN_DIFFERENT, 0.0),
        _ => Compared::MISSING,
    };
    let all = [email, local, phone, first, last, company, domain];
    Comparison {
        levels: all.map(|c| c.level),
        similarities: all.map(|c| c.similarity),
    }
}

/// Whether `local` (an e-mail key's local part) contains a first or last
/// name (3 letters or more) of `a` or `b`.
fn local_part_has_a_name<K: KeyView>(local: &str, a: &K, b: &K) -> bool {
    let Some(letters) = LocalLetters::of(local) else {
        return false;
    };
    let letters = letters.as_bytes();
    [a.first_name(), a.last_name(), b.first_name(), b.last_name()]
        .into_iter()
        .flatten()
        .filter(|n| n.len() >= 3)
        .any(|n| letters.windows(n.len()).any(|w| w == n.as_bytes()))
}

/// First and last names, straight or crosswise.
fn compare_names<K: KeyView>(a: &K, b: &K, memo: &mut Memo) -> (Compared, Compared) {
    let (ia, ib) = (a.ids(), b.ids());
    let first = match (a.first_name(), b.first_name()) {
        (Some(x), Some(y)) => memo.get(0, (ia[0], ib[0]), || compare_first_names(x, y)),
        (Some(x), None) => first_name_in_email(x, b.local_part(), b.last_name()),
        (None, Some(y)) => first_name_in_email(y, a.local_part(), a.last_name()),
        (None, None) => Compared::MISSING,
    };
    let last = match (a.last_name(), b.last_name()) {
        (Some(x), Some(y)) => memo.get(1, (ia[1], ib[1]), || {
            compare_last_names(x, y, a.last_name_sounds(), b.last_name_sounds())
        }),
        (Some(x), None) => last_name_in_email(x, b.local_part(), b.first_name()),
        (None, Some(y)) => last_name_in_email(y, a.local_part(), a.first_name()),
        (None, None) => Compared::MISSING,
    };
    let straight_ok = |c: &Compared| c.level != level::NAME_DIFFERENT;
    if straight_ok(&first) || straight_ok(&last) {
        return (first, last);
    }
    // Both differ: maybe the names were swapped. Each cross comparison is
    // of one name with the other's, so both use the first-name comparator
    // and the better level goes to the first name: `compare(b, a)` swaps
    // the two cross comparisons and so gets the same pair of levels.
    let (Some(af), Some(al), Some(bf), Some(bl)) =
        (a.first_name(), a.last_name(), b.first_name(), b.last_name())
    else {
        return (first, last);
    };
    let x = compare_first_names(af, bl);
    let y = compare_first_names(al, bf);
    let good = |c: &Compared| c.level <= level::NAME_CLOSE;
    if !(good(&x) && good(&y)) {
        return (first, last);
    }
    if (x.level, x.similarity.map(f64::to_bits)) <= (y.level, y.similarity.map(f64::to_bits)) {
        (x, y)
    } else {
        (y, x)
    }
}

/// The weight [`similarity()`] gives a field's level (`company` is the
/// company's level: a shared domain adds little when the company agrees).
pub(crate) fn fixed_weight(field: Field, lvl: u8, company: u8) -> f64 {
    match (field, lvl) {
        (_, level::MISSING) => 0.0,
        (Field::Email, level::EQUAL) => EMAIL_EQUAL,
        (Field::EmailLocalPart, level::EQUAL) => LOCAL_PART_EQUAL_DISTINCTIVE,
        (Field::EmailLocalPart, level::LOCAL_PLAIN | level::LOCAL_NAME) => LOCAL_PART_EQUAL,
        (Field::Phone, level::EQUAL) => PHONE_EQUAL,
        (Field::Phone, level::PHONE_CLOSE) => PHONE_CLOSE,
        (Field::Phone, level::PHONE_DIFFERENT) => PHONE_DIFFERENT,
        (Field::FirstName, level::EQUAL) => FIRST_EQUAL,
        (Field::FirstName, level::NAME_ALIAS) => FIRST_NICKNAME,
        (Field::FirstName, level::NAME_CLOSE) => FIRST_CLOSE,
        (Field::FirstName, level::NAME_NEAR) => FIRST_NEAR,
        (Field::FirstName, level::NAME_WEAK) => FIRST_INITIAL,
        (Field::FirstName, level::NAME_IN_EMAIL) => FIRST_IN_EMAIL,
        (Field::FirstName, level::NAME_DIFFERENT) => FIRST_DIFFERENT,
        (Field::LastName, level::EQUAL) => LAST_EQUAL,
        (Field::LastName, level::NAME_ALIAS) => LAST_PREFIX,
        (Field::LastName, level::NAME_CLOSE) => LAST_CLOSE,
        (Field::LastName, level::NAME_NEAR) => LAST_NEAR,
        (Field::LastName, level::NAME_WEAK) => LAST_UNCLEAR,
        (Field::LastName, level::NAME_IN_EMAIL) => LAST_IN_EMAIL,
        (Field::LastName, level::NAME_DIFFERENT) => LAST_DIFFERENT,
        (Field::Company, level::EQUAL) => COMPANY_EQUAL,
        (Field::Company, level::COMPANY_CLOSE) => COMPANY_CLOSE,
        (Field::Company, level::COMPANY_PARTIAL) => COMPANY_PARTIAL,
        (Field::Company, level::COMPANY_DIFFERENT) => COMPANY_DIFFERENT,
        (Field::CorporateDomain, level::EQUAL)
            if company == level::EQUAL || company == level::COMPANY_CLOSE =>
        {
            DOMAIN_EQUAL_SAME_COMPANY
        }
        (Field::CorporateDomain, level::EQUAL) => DOMAIN_EQUAL,
        _ => 0.0,
    }
}

/// Local parts that name a role, not a person (`info@`, `ventas@`): equal
/// ones say nothing about identity.
const ROLE_LOCAL_PARTS: &[&str] = &[
    "admin",
    "contact",
    "contacto",
    "enquiries",
    "hello",
    "hola",
    "info",
    "mail",
    "marketing",
    "noreply",
    "office",
    "sales",
    "support",
    "team",
    "ventas",
    "webmaster",
];

/// What one field contributed to a [`Similarity`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FieldScore {
    /// How alike the two values are, 0-1 (Jaro-Winkler, token overlap or
    /// 0/1 for exact keys); `None` when either lead lacks the field.
    pub similarity: Option<f64>,
    /// Log-odds evidence added to the total: positive for agreement,
    /// negative for disagreement, `0.0` when missing or uninformative.
    pub weight: f64,
}

impl FieldScore {
    /// No evidence: a value missing on either side.
    pub const MISSING: FieldScore = FieldScore {
        similarity: None,
        weight: 0.0,
    };
}

/// The per-field breakdown of a [`Similarity`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FieldScores {
    /// Normalized e-mail key (Gmail dots and `+tags` removed).
    pub email: FieldScore,
    /// The part before `@` when the addresses differ (a person keeps
    /// `jsmith1984` across providers).
    pub email_local_part: FieldScore,
    /// Phone in E.164.
    pub phone: FieldScore,
    /// First name: equal, nickname, or Jaro-Winkler; when one lead has
    /// none, whether the other's first name starts its e-mail.
    pub first_name: FieldScore,
    /// Last name: equal, Double Metaphone plus Jaro-Winkler; when one lead
    /// has none, whether the other's last name is in its e-mail.
    pub last_name: FieldScore,
    /// Company tokens (legal forms removed), fuzzy token overlap.
    pub company: FieldScore,
    /// Corporate e-mail domain (free-mail and disposable domains ignored).
    pub corporate_domain: FieldScore,
}

impl FieldScores {
    /// Total evidence, summed in a fixed order so the result is symmetric.
    fn evidence(&self) -> f64 {
        self.email.weight
            + self.email_local_part.weight
            + self.phone.weight
            + self.first_name.weight
            + self.last_name.weight
            + self.company.weight
            + self.corporate_domain.weight
    }
}

/// How alike two leads are.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Similarity {
    /// The combined similarity, 0-1.
    pub total: f64,
    /// Sum of the field weights (log-odds) behind `total`.
    pub evidence: f64,
    /// What each field contributed.
    pub fields: FieldScores,
}

/// Compares two leads' match keys.
///
/// Symmetric (`similarity(a, b) == similarity(b, a)` exactly) and always
/// within `[0, 1]`. See the [module docs](self) for the weights.
///
/// # Example
///
/// ```
/// use lead_core::{Email, LeadFields, MatchKeys, Phone, Region};
/// use lead_core::dedup::similarity;
///
/// let mut a = LeadFields::new(Email::parse("robert.smith@gmail.com").unwrap());
/// a.first_name = Some("Robert".into());
/// a.last_name = Some("Smith".into());
/// a.phone = Some(Phone::parse("+1 415 555 2671", Region::default()).unwrap());
/// let mut b = LeadFields::new(Email::parse("bob.smith@outlook.com").unwrap());
/// b.first_name = Some("Bob".into());
/// b.last_name = Some("Smyth".into());
/// b.phone = Some(Phone::parse("(415) 555-2671", Region::default()).unwrap());
///
/// let s = similarity(&MatchKeys::of(&a), &MatchKeys::of(&b));
/// assert!(s.total > 0.85, "{s:?}");
/// ```
pub fn similarity(a: &MatchKeys, b: &MatchKeys) -> Similarity {
    similarity_with(a, b, &Rarity::NEUTRAL, &Rarity::NEUTRAL)
}

/// [`similarity()`] with frequency-based name weights: `ra` and `rb` say how
/// rare each lead's first name, last name and company are in the batch
/// (from [`NameFrequencies::rarity`](super::NameFrequencies::rarity)). A
/// field the two leads agree on gains the smaller of the two rarities,
/// scaled by how strong the agreement is (an exact match the whole, a typo
/// or nickname part of it); disagreements and missing values are as in
/// [`similarity()`]. See the [`frequency`](super::frequency) module docs.
///
/// Symmetric (`similarity_with(a, b, ra, rb) == similarity_with(b, a, rb,
/// ra)`), always within `[0, 1]`, and equal to [`similarity()`] with
/// [`Rarity::NEUTRAL`] on both sides.
pub fn similarity_with(a: &MatchKeys, b: &MatchKeys, ra: &Rarity, rb: &Rarity) -> Similarity {
    weigh_fixed(&compare(a, b), a, b, ra, rb)
}

/// [`similarity_with`] of a comparison already made.
pub(crate) fn weigh_fixed<K: KeyView>(
    cmp: &Comparison,
    a: &K,
    b: &K,
    ra: &Rarity,
    rb: &Rarity,
) -> Similarity {
    let company_level = cmp.level(Field::Company);
    let score = |field: Field| FieldScore {
        similarity: cmp.similarities.get(field as usize).copied().flatten(),
        weight: fixed_weight(field, cmp.level(field), company_level),
    };
    // A name given by both counts with the rarer of the two; a name found
    // in the other's e-mail only with its own rarity, and only downwards.
    let name_rarity = |x: bool, y: bool, rx: f64, ry: f64| match (x, y) {
        (true, true) => rx.min(ry),
        (true, false) => rx.min(0.0),
        (false, true) => ry.min(0.0),
        (false, false) => 0.0,
    };
    let fields = FieldScores {
        email: score(Field::Email),
        email_local_part: score(Field::EmailLocalPart),
        phone: score(Field::Phone),
        first_name: with_rarity(
            score(Field::FirstName),
            FIRST_EQUAL,
            name_rarity(
                a.first_name().is_some(),
                b.first_name().is_some(),
                ra.first_name(),
                rb.first_name(),
            ),
        ),
        last_name: with_rarity(
            score(Field::LastName),
            LAST_EQUAL,
            name_rarity(
                a.last_name().is_some(),
                b.last_name().is_some(),
                ra.last_name(),
                rb.last_name(),
            ),
        ),
        company: with_rarity(
            score(Field::Company),
            COMPANY_EQUAL,
            ra.company().min(rb.company()),
        ),
        corporate_domain: score(Field::CorporateDomain),
    };
    let evidence = fields.evidence();
    let mut total = logistic(evidence - BIAS);
    if cmp.level(Field::Email) == level::EQUAL {
        total = total.max(SAME_EMAIL_FLOOR);
    }
    Similarity {
        total: total.clamp(0.0, 1.0),
        evidence,
        fields,
    }
}

/// Adds `rarity` to an agreement, scaled by the agreement's share of the
/// exact-match weight `equal`. Disagreements (weight ≤ 0) are unchanged.
/// A non-finite rarity counts as 0; the result never turns an agreement
/// into a disagreement.
fn with_rarity(score: FieldScore, equal: f64, rarity: f64) -> FieldScore {
    if score.weight <= 0.0 || !rarity.is_finite() {
        return score;
    }
    let share = (score.weight / equal).min(1.0);
    FieldScore {
        similarity: score.similarity,
        weight: (score.weight + share * rarity).max(0.0),
    }
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Compares folded first names: equal, nickname, an initial, or typo
/// distance.
pub(crate) fn compare_first_names(a: &str, b: &str) -> Compared {
    if a == b {
        return Compared::new(level::EQUAL, 1.0);
    }
    if are_nicknames(a, b) {
        return Compared::new(level::NAME_ALIAS, 1.0);
    }
    // "J" for "John": consistent, but barely informative.
    let initial_of = |short: &str, long: &str| short.len() == 1 && long.starts_with(short);
    if initial_of(a, b) || initial_of(b, a) {
        return Compared::new(level::NAME_WEAK, 0.5);
    }
    let jw = jaro_winkler(a, b);
    let lvl = if jw >= 0.92 {
        level::NAME_CLOSE
    } else if jw >= 0.85 {
        level::NAME_NEAR
    } else {
        level::NAME_DIFFERENT
    };
    Compared::new(lvl, jw)
}

/// Compares folded last names with Jaro-Winkler, helped by Double
/// Metaphone: a phonetic match lowers the bar for a typo (`Smith`/`Smyth`).
/// One name being (nearly) the start of the other (`garcia` /
/// `garcialopez`) covers a Spanish second surname left out.
pub(crate) fn compare_last_names(
    a: &str,
    b: &str,
    pa: Option<(&str, &str)>,
    pb: Option<(&str, &str)>,
) -> Compared {
    if a == b {
        return Compared::new(level::EQUAL, 1.0);
    }
    let jw = jaro_winkler(a, b);
    let sounds_alike = match (pa, pb) {
        (Some((a1, a2)), Some((b1, b2))) => {
            let eq = |x: &str, y: &str| !x.is_empty() && x == y;
            eq(a1, b1) || eq(a1, b2) || eq(a2, b1) || eq(a2, b2)
        }
        _ => false,
    };
    // A Spanish second surname left out (`garcia` / `garcialopez`), maybe
    // with a typo in the first: compare the shorter name with the start of
    // the longer one.
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let first_surname_matches = short.len() >= 4
        && long.len() >= short.len() + 3
        && long
            .get(..short.len())
            .is_some_and(|head| head == short || jaro_winkler(short, head) >= 0.9);
    let lvl = if jw >= 0.93 || (sounds_alike && jw >= 0.80) {
        level::NAME_CLOSE
    } else if first_surname_matches {
        level::NAME_ALIAS
    } else if jw >= 0.85 {
        level::NAME_NEAR
    } else if jw >= 0.80 {
        level::NAME_WEAK
    } else {
        level::NAME_DIFFERENT
    };
    Compared::new(lvl, jw)
}

/// Compares two [`phone_key`](crate::phone_key)s: equal, one or two digits
/// apart (a typo, a swapped pair), or different.
pub(crate) fn compare_phones(a: &str, b: &str) -> Compared {
    if a == b {
        return Compared::new(level::EQUAL, 1.0);
    }
    let distance = osa_distance(a, b);
    let longest = a.len().max(b.len()).max(1);
    let similarity = 1.0 - (distance.min(longest) as f64 / longest as f64);
    if distance <= 2 {
        Compared::new(level::PHONE_CLOSE, similarity)
    } else {
        Compared::new(level::PHONE_DIFFERENT, similarity)
    }
}

/// Longest strings [`osa_distance`] handles on the stack.
const OSA_SHORT: usize = 16;

/// Optimal string alignment distance, as `strsim::osa_distance`: phone keys
/// (at most [`PHONE_KEY_DIGITS`](crate::PHONE_KEY_DIGITS) ASCII digits)
/// take a path with three rows on the stack, since `strsim` allocates
/// three vectors per call, on a path taken millions of times per batch.
pub(crate) fn osa_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() > OSA_SHORT || b.len() > OSA_SHORT || !a.is_ascii() || !b.is_ascii() {
        return strsim::osa_distance(
            std::str::from_utf8(a).unwrap_or_default(),
            std::str::from_utf8(b).unwrap_or_default(),
        );
    }
    let mut two_ago = [0usize; OSA_SHORT + 1];
    let mut prev: [usize; OSA_SHORT + 1] = std::array::from_fn(|j| j);
    let mut curr = [0usize; OSA_SHORT + 1];
    for (i, &ca) in a.iter().enumerate() {
        curr[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let mut d = (prev[j + 1] + 1).min(curr[j] + 1).min(prev[j] + cost);
            if i > 0 && j > 0 && a.get(i - 1) == Some(&cb) && b.get(j - 1) == Some(&ca) {
                d = d.min(two_ago[j - 1] + 1);
            }
            curr[j + 1] = d;
        }
        two_ago = prev;
        prev = curr;
    }
    prev[b.len()]
}

/// Most letters of a local part looked at (RFC 5321 allows 64 octets).
const LOCAL_LETTERS_MAX: usize = 64;

/// The letters of an e-mail key's local part, lower case, in a fixed
/// buffer (no allocation on the comparison path).
struct LocalLetters {
    buf: [u8; LOCAL_LETTERS_MAX],
    len: usize,
}

impl LocalLetters {
    /// The letters of a local part (the first [`LOCAL_LETTERS_MAX`]), or
    /// `None` for a role address (`info@`).
    fn of(local: &str) -> Option<Self> {
        if ROLE_LOCAL_PARTS.contains(&local) {
            return None;
        }
        let mut letters = LocalLetters {
            buf: [0; LOCAL_LETTERS_MAX],
            len: 0,
        };
        for c in local.bytes().filter(u8::is_ascii_alphabetic) {
            let Some(slot) = letters.buf.get_mut(letters.len) else {
                break;
            };
            *slot = c.to_ascii_lowercase();
            letters.len += 1;
        }
        Some(letters)
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

/// The first name of one lead found in the e-mail of another lead that
/// gives no first name: handles start with the first name, or with the
/// owner's last name and then the first name (`ana.lopez84`,
/// `lopez.ana`). Names under 3 letters are not looked for.
pub(crate) fn first_name_in_email(first: &str, local: &str, owner_last: Option<&str>) -> Compared {
    if first.len() < 3 {
        return Compared::MISSING;
    }
    let Some(letters) = LocalLetters::of(local) else {
        return Compared::MISSING;
    };
    let letters = letters.as_bytes();
    let first = first.as_bytes();
    let after_last = owner_last
        .filter(|l| !l.is_empty())
        .and_then(|l| letters.strip_prefix(l.as_bytes()));
    if letters.starts_with(first) || after_last.is_some_and(|rest| rest.starts_with(first)) {
        Compared::new(level::NAME_IN_EMAIL, 1.0)
    } else {
        Compared::MISSING
    }
}

/// The last name of one lead found in the e-mail of another lead that
/// gives no last name: the whole name (4 letters or more) or, for a
/// double Spanish surname folded into one word (`garcialopez`), its first
/// 5 letters or more, anywhere in the local part after the owner's first
/// name is taken off its start.
pub(crate) fn last_name_in_email(last: &str, local: &str, owner_first: Option<&str>) -> Compared {
    if last.len() < 4 {
        return Compared::MISSING;
    }
    let Some(letters) = LocalLetters::of(local) else {
        return Compared::MISSING;
    };
    let letters = letters.as_bytes();
    let rest = owner_first
        .filter(|f| !f.is_empty())
        .and_then(|f| letters.strip_prefix(f.as_bytes()))
        .unwrap_or(letters);
    // The longest start of `last` found anywhere in `rest`.
    let last = last.as_bytes();
    let longest = (0..rest.len())
        .map(|i| {
            rest.iter()
                .skip(i)
                .zip(last)
                .take_while(|(x, y)| x == y)
                .count()
        })
        .max()
        .unwrap_or(0);
    if longest == last.len() || longest >= LAST_IN_EMAIL_MIN_PREFIX {
        Compared::new(level::NAME_IN_EMAIL, 1.0)
    } else {
        Compared::MISSING
    }
}

/// Compares company token lists (sorted, legal forms removed) by a fuzzy
/// token overlap: a token counts as shared when the other list has a token
/// within Jaro-Winkler 0.92 of it (`acmee` ~ `acme`).
pub(crate) fn compare_companies<'a>(
    a: impl Iterator<Item = &'a str>,
    b: impl Iterator<Item = &'a str>,
) -> Compared {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.collect(), b.collect());
    compare_tokens(&a, &b, tokens_alike)
}

/// Whether two company tokens count as the same word: equal, or within
/// Jaro-Winkler 0.92 (`acmee` ~ `acme`).
fn tokens_alike(x: &str, y: &str) -> bool {
    x == y || jaro_winkler(x, y) >= 0.92
}

/// [`compare_companies`] of two sorted token lists, tokens as text or as
/// ids, `alike` telling whether two tokens count as the same word.
fn compare_tokens<T: Copy + PartialEq>(
    a: &[T],
    b: &[T],
    mut alike: impl FnMut(T, T) -> bool,
) -> Compared {
    if a.is_empty() || b.is_empty() {
        return Compared::MISSING;
    }
    if a == b {
        return Compared::new(level::EQUAL, 1.0);
    }
    // Counting from both sides keeps the measure symmetric.
    let mut shared = 0;
    for &x in a {
        if b.iter().any(|&y| alike(x, y)) {
            shared += 1;
        }
    }
    for &y in b {
        if a.iter().any(|&x| alike(y, x)) {
            shared += 1;
        }
    }
    let all = a.len() + b.len();
    let overlap = shared as f64 / all as f64;
    let lvl = if shared == all {
        level::COMPANY_CLOSE
    } else if overlap >= 0.6 {
        level::COMPANY_PARTIAL
    } else {
        level::COMPANY_DIFFERENT
    };
    Compared::new(lvl, overlap)
}

/// Compares the parts before `@` of two different e-mail keys, ignoring
/// `.`, `_` and `-`. Equal role addresses (`info@`) and very short parts
/// say nothing; equal parts with digits (`jsmith84`) are distinctive.
pub(crate) fn compare_local_parts(la: &str, lb: &str) -> Compared {
    // Equality first: it fails on the first bytes for almost every pair.
    if !compared_local_bytes(la).eq(compared_local_bytes(lb)) {
        return Compared::new(level::LOCAL_DIFFERENT, 0.0);
    }
    if compared_local_bytes(la).count() < 3
        || ROLE_LOCAL_PARTS.contains(&la)
        || ROLE_LOCAL_PARTS.contains(&lb)
    {
        return Compared::MISSING;
    }
    let lvl = if la.bytes().any(|c| c.is_ascii_digit()) {
        level::EQUAL
    } else {
        level::LOCAL_PLAIN
    };
    Compared::new(lvl, 1.0)
}

/// The local part of an e-mail key when it identifies a person on its own
/// (`jsmith84`): it has a digit, at least 3 other characters and is not a
/// role address. Such local parts are blocking keys.
pub(crate) fn distinctive_local_part(local: &str) -> Option<&str> {
    let has_digit = local.bytes().any(|c| c.is_ascii_digit());
    let letters = local.bytes().filter(u8::is_ascii_alphabetic).count();
    (has_digit && letters >= 3 && !ROLE_LOCAL_PARTS.contains(&local)).then_some(local)
}

/// Jaro-Winkler similarity (prefix scale 0.1, up to 4 characters, boost
/// above 0.7), exactly as `strsim::jaro_winkler`, with the arguments put in
/// a fixed order first so the result is symmetric to the last bit.
///
/// Short ASCII strings (every folded name) take an allocation-free path
/// with bit masks; anything else goes to `strsim`.
pub(crate) fn jaro_winkler(a: &str, b: &str) -> f64 {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    if a.len() <= 64 && b.len() <= 64 && a.is_ascii() && b.is_ascii() {
        jaro_winkler_ascii(a.as_bytes(), b.as_bytes())
    } else {
        strsim::jaro_winkler(a, b)
    }
}

/// `strsim::generic_jaro_winkler` for byte strings of at most 64 bytes,
/// with `u64` match flags instead of a heap vector. Same operations in the
/// same order, so the same floating-point result.
fn jaro_winkler_ascii(a: &[u8], b: &[u8]) -> f64 {
    let (a_len, b_len) = (a.len(), b.len());
    if a_len == 0 && b_len == 0 {
        return 1.0;
    }
    if a_len == 0 || b_len == 0 {
        return 0.0;
    }
    let range = (a_len.max(b_len) / 2).saturating_sub(1);
    let (mut a_flags, mut b_flags) = (0u64, 0u64);
    let mut matches = 0usize;
    for (i, &ca) in a.iter().enumerate() {
        let lo = i.saturating_sub(range);
        let hi = b_len.min(i + range + 1);
        for j in lo..hi {
            if b_flags & (1 << j) == 0 && b.get(j) == Some(&ca) {
                a_flags |= 1 << i;
                b_flags |= 1 << j;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let mut k = 0usize;
    for (i, &ca) in a.iter().enumerate() {
        if a_flags & (1 << i) != 0 {
            while k < b_len && b_flags & (1 << k) == 0 {
                k += 1;
            }
            if b.get(k) != Some(&ca) {
                transpositions += 1;
            }
            k += 1;
        }
    }
    transpositions /= 2;
    let m = matches as f64;
    let jaro =
        ((m / a_len as f64) + (m / b_len as f64) + ((matches - transpositions) as f64 / m)) / 3.0;
    if jaro > 0.7 {
        let prefix = a.iter().take(4).zip(b).take_while(|(x, y)| x == y).count();
        jaro + 0.1 * prefix as f64 * (1.0 - jaro)
    } else {
        jaro
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::dedup::Rarity;
    use crate::dedup::view::local_part;
    use crate::{Email, LeadFields, Phone, Region};

    fn keys(email: &str, first: Option<&str>, last: Option<&str>) -> LeadFields {
        let mut f = LeadFields::new(Email::parse(email).expect("test e-mail is valid"));
        f.first_name = first.map(str::to_owned);
        f.last_name = last.map(str::to_owned);
        f
    }

    fn phone(raw: &str) -> Option<Phone> {
        Some(Phone::parse(raw, Region::default()).expect("test phone is valid"))
    }

    fn sim(a: &LeadFields, b: &LeadFields) -> Similarity {
        similarity(&MatchKeys::of(a), &MatchKeys::of(b))
    }

    #[test]
    fn fast_jaro_winkler_matches_strsim_on_known_pairs() {
        for (a, b) in [
            ("martha", "marhta"),
            ("dwayne", "duane"),
            ("dixon", "dicksonx"),
            ("jones", "johnson"),
            ("", ""),
            ("a", ""),
            ("abc", "abc"),
            ("cheeseburger", "cheese fries"),
        ] {
            assert_eq!(
                jaro_winkler(a, b).to_bits(),
                strsim::jaro_winkler(a, b).to_bits(),
                "{a}/{b}"
            );
        }
    }

    proptest! {
        #[test]
        fn osa_distance_equals_strsim(a in "[0-9]{0,12}", b in "[0-9a-c]{0,18}") {
            prop_assert_eq!(osa_distance(&a, &b), strsim::osa_distance(&a, &b));
        }
    }

    #[test]
    fn same_email_key_is_at_least_095_even_when_names_disagree() {
        let a = keys("ana.lopez+news@gmail.com", Some("Ana"), Some("Lopez"));
        let b = keys("analopez@googlemail.com", Some("Maria"), Some("Fernandez"));
        let s = sim(&a, &b);
        assert!(s.total >= SAME_EMAIL_FLOOR, "{s:?}");
    }

    #[test]
    fn same_phone_and_similar_name_is_a_duplicate() {
        let mut a = keys("rsmith@acme.com", Some("Robert"), Some("Smith"));
        a.phone = phone("+1 415 555 2671");
        let mut b = keys("bobby77@yahoo.com", Some("Bob"), Some("Smyth"));
        b.phone = phone("415.555.2671");
        let s = sim(&a, &b);
        assert!(s.total > 0.85, "{s:?}");
        assert_eq!(s.fields.phone.weight, PHONE_EQUAL);
    }

    #[test]
    fn same_name_and_company_with_another_provider_is_a_duplicate() {
        let mut a = keys("jose.garcia@gmail.com", Some("José"), Some("García"));
        a.company = Some("Acme Widgets S.L.".into());
        let mut b = keys("jgarcia@outlook.com", Some("Jose"), Some("Garcia"));
        b.company = Some("ACME WIDGETS".into());
        let s = sim(&a, &b);
        assert!(s.total > 0.85, "{s:?}");
    }

    #[test]
    fn same_corporate_domain_or_first_name_alone_is_well_below_threshold() {
        let a = keys("john@acme.com", Some("John"), None);
        let b = keys("john.doe@acme.com", Some("John"), None);
        assert!(sim(&a, &b).total < 0.5, "{:?}", sim(&a, &b));
        let c = keys("john@acme.com", Some("John"), Some("Smith"));
        let d = keys("john@globex.com", Some("John"), Some("Brown"));
        assert!(sim(&c, &d).total < 0.1);
        let e = keys("x1@acme.com", None, None);
        let f = keys("y2@acme.com", None, None);
        assert!(sim(&e, &f).total < 0.1);
    }

    #[test]
    fn phones_compare_by_their_digits_valid_or_not() {
        assert_eq!(compare_phones("612345678", "612345678").level, level::EQUAL);
        assert_eq!(
            compare_phones("612345678", "612345687").level,
            level::PHONE_CLOSE
        );
        assert_eq!(
            compare_phones("612345678", "612340078").level,
            level::PHONE_CLOSE
        );
        assert_eq!(
            compare_phones("612345678", "698765432").level,
            level::PHONE_DIFFERENT
        );
        // Kept as written because it is not an assigned number: the same
        // digits typed twice still agree.
        let invalid = |email: &str| {
            let mut f = keys(email, Some("Ana"), Some("Lopez"));
            f.warnings.push(crate::FieldWarning::kept(
                "phone",
                "invalid_phone",
                "phone is not a valid number",
                Some("+34 000 111 222".into()),
            ));
            f
        };
        let s = sim(&invalid("a1@gmail.com"), &invalid("b2@yahoo.com"));
        assert_eq!(s.fields.phone.weight, PHONE_EQUAL);
        let mut valid = keys("c3@gmail.com", Some("Ana"), Some("Lopez"));
        valid.phone = phone("+34 612 345 678");
        let mut typo = keys("d4@yahoo.com", Some("Ana"), Some("Lopez"));
        typo.phone = phone("+34 612 345 687");
        assert_eq!(sim(&valid, &typo).fields.phone.weight, PHONE_CLOSE);
    }

    #[test]
    fn swapped_first_and_last_names_agree_and_compare_symmetrically() {
        let a = MatchKeys::of(&keys("a1@gmail.com", Some("Lopez"), Some("Ana")));
        let b = MatchKeys::of(&keys("b2@yahoo.com", Some("Ana"), Some("Lopes")));
        let (ab, ba) = (compare(&a, &b), compare(&b, &a));
        assert_eq!(ab, ba);
        assert_eq!(ab.level(Field::FirstName), level::EQUAL);
        assert_eq!(ab.level(Field::LastName), level::NAME_CLOSE);
        let c = MatchKeys::of(&keys("c3@gmail.com", Some("Eva"), Some("Ana")));
        assert_eq!(
            compare(&a, &c).level(Field::FirstName),
            level::NAME_DIFFERENT
        );
    }

    #[test]
    fn free_mail_domains_are_not_a_signal() {
        let a = keys("a1@gmail.com", None, None);
        let b = keys("b2@gmail.com", None, None);
        let s = sim(&a, &b);
        assert_eq!(s.fields.corporate_domain, FieldScore::MISSING);
    }

    #[test]
    fn missing_fields_are_neutral() {
        let a = keys("a1@gmail.com", Some("Ana"), None);
        let b = keys("b2@yahoo.com", None, Some("Lopez"));
        let s = sim(&a, &b);
        assert_eq!(s.fields.first_name, FieldScore::MISSING);
        assert_eq!(s.fields.last_name, FieldScore::MISSING);
        assert_eq!(s.fields.phone, FieldScore::MISSING);
        assert_eq!(s.fields.company, FieldScore::MISSING);
        assert_eq!(s.evidence, 0.0);
    }

    #[test]
    fn same_full_name_alone_is_not_a_duplicate() {
        let a = keys("a1@gmail.com", Some("John"), Some("Smith"));
        let b = keys("b2@yahoo.com", Some("John"), Some("Smith"));
        assert!(sim(&a, &b).total < 0.5);
    }

    #[test]
    fn first_name_comparator_ranks_equal_nickname_typo_and_different() {
        assert_eq!(compare_first_names("robert", "robert").level, level::EQUAL);
        assert_eq!(
            compare_first_names("bob", "robert").level,
            level::NAME_ALIAS
        );
        assert_eq!(
            compare_first_names("paco", "francisco").level,
            level::NAME_ALIAS
        );
        assert_eq!(compare_first_names("jonh", "john").level, level::NAME_CLOSE);
        assert_eq!(compare_first_names("j", "john").level, level::NAME_WEAK);
        assert_eq!(
            compare_first_names("maria", "jose").level,
            level::NAME_DIFFERENT
        );
    }

    #[test]
    fn last_name_comparator_uses_phonetics_for_typos() {
        let p = |s: &str| Some(crate::phonetic(s));
        fn sounds(p: &Option<(String, String)>) -> Option<(&str, &str)> {
            p.as_ref().map(|(a, b)| (a.as_str(), b.as_str()))
        }
        let (smith, smyth) = (p("smith"), p("smyth"));
        assert_eq!(
            compare_last_names("smith", "smyth", sounds(&smith), sounds(&smyth)).level,
            level::NAME_CLOSE
        );
        let (g, gl) = (p("garcia"), p("garcialopez"));
        assert_eq!(
            compare_last_names("garcia", "garcialopez", sounds(&g), sounds(&gl)).level,
            level::NAME_ALIAS
        );
        let (f, fc) = (p("fzentes"), p("fuentescano"));
        assert_eq!(
            compare_last_names("fzentes", "fuentescano", sounds(&f), sounds(&fc)).level,
            level::NAME_ALIAS
        );
        let (a, b) = (p("smith"), p("brown"));
        assert_eq!(
            compare_last_names("smith", "brown", sounds(&a), sounds(&b)).level,
            level::NAME_DIFFERENT
        );
    }

    #[test]
    fn company_comparator_ignores_legal_forms_and_tolerates_typos() {
        let t = |s: &str| crate::company_tokens(s);
        assert_eq!(
            compare_companies(
                t("Acme Inc.").iter().map(String::as_str),
                t("ACME Corporation").iter().map(String::as_str)
            )
            .level,
            level::EQUAL
        );
        assert_eq!(
            compare_companies(
                t("Acmee Widgets").iter().map(String::as_str),
                t("Acme Widgets").iter().map(String::as_str)
            )
            .level,
            level::COMPANY_CLOSE
        );
        assert_eq!(
            compare_companies(
                t("Acme").iter().map(String::as_str),
                t("Acme Widgets").iter().map(String::as_str)
            )
            .level,
            level::COMPANY_PARTIAL
        );
        assert_eq!(
            compare_companies(
                t("Norvex Systems").iter().map(String::as_str),
                t("Kalta Systems").iter().map(String::as_str)
            )
            .level,
            level::COMPANY_DIFFERENT
        );
        assert_eq!(
            compare_companies(std::iter::empty(), t("Acme").iter().map(String::as_str)),
            Compared::MISSING
        );
    }

    #[test]
    fn local_parts_with_digits_are_distinctive_and_role_addresses_ignored() {
        assert_eq!(
            compare_local_parts(
                local_part("jsmith84@gmail.com"),
                local_part("j.smith84@outlook.com")
            )
            .level,
            level::EQUAL
        );
        assert_eq!(
            compare_local_parts(
                local_part("johnsmith@gmail.com"),
                local_part("john.smith@yahoo.com")
            )
            .level,
            level::LOCAL_PLAIN
        );
        assert_eq!(
            compare_local_parts(local_part("info@acme.com"), local_part("info@globex.com")),
            Compared::MISSING
        );
        assert_eq!(
            compare_local_parts(local_part("jo@acme.com"), local_part("jo@globex.com")),
            Compared::MISSING
        );
        assert_eq!(
            compare_local_parts(local_part("ana@a.com"), local_part("eva@b.com")).level,
            level::LOCAL_DIFFERENT
        );
    }

    #[test]
    fn a_missing_name_is_looked_for_in_the_e_mail() {
        assert_eq!(
            first_name_in_email("ana", local_part("lopez.ana84@gmail.com"), Some("lopez")).level,
            level::NAME_IN_EMAIL
        );
        assert_eq!(
            first_name_in_email("ana", local_part("ana.lopez84@gmail.com"), None).level,
            level::NAME_IN_EMAIL
        );
        assert_eq!(
            first_name_in_email("ana", local_part("mariana84@gmail.com"), None),
            Compared::MISSING
        );
        assert_eq!(
            first_name_in_email("jo", local_part("jo.smith@gmail.com"), None),
            Compared::MISSING
        );
        assert_eq!(
            last_name_in_email(
                "hololsalsonvidal",
                local_part("mario.hololsalson9351@proton.me"),
                Some("mario")
            )
            .level,
            level::NAME_IN_EMAIL
        );
        assert_eq!(
            last_name_in_email("smith", local_part("jsmith@acme.com"), None).level,
            level::NAME_IN_EMAIL
        );
        // "mario" is the owner's first name, not the other lead's surname.
        assert_eq!(
            last_name_in_email("mario", local_part("mario.perez@acme.com"), Some("mario")),
            Compared::MISSING
        );
        assert_eq!(
            last_name_in_email("lopez", local_part("info@lopez.com"), None),
            Compared::MISSING
        );
        assert_eq!(
            last_name_in_email("li", local_part("li@acme.com"), None),
            Compared::MISSING
        );
        assert_eq!(
            last_name_in_email("pérez", local_part("perez@acme.com"), None),
            Compared::MISSING
        );

        let a = keys("mario.hololsalson9351@proton.me", Some("Mario"), None);
        let b = keys("marioh@acme.com", Some("Mario"), Some("Hololsalson Vidal"));
        let (ab, ba) = (sim(&a, &b), sim(&b, &a));
        assert_eq!(ab, ba);
        assert_eq!(ab.fields.last_name.weight, LAST_IN_EMAIL);
    }

    #[test]
    fn rarity_raises_agreements_only_and_keeps_symmetry() {
        let mut a = keys("x1@gmail.com", Some("Sean"), Some("Xanbrasalley"));
        a.company = Some("Acme".into());
        let mut b = keys("y2@yahoo.com", Some("Sean"), Some("Xanbrasaley"));
        b.company = Some("Globex".into());
        let (a, b) = (MatchKeys::of(&a), MatchKeys::of(&b));
        let rare = Rarity::new(0.5, 1.5, 1.0);
        let plain = similarity(&a, &b);
        let weighted = similarity_with(&a, &b, &rare, &rare);
        assert_eq!(
            weighted.fields.last_name.weight,
            plain.fields.last_name.weight + LAST_CLOSE / LAST_EQUAL * 1.5
        );
        assert_eq!(weighted.fields.company, plain.fields.company);
        assert!(weighted.total > plain.total);
        // The smaller rarity counts.
        let common = Rarity::new(-0.5, -0.5, -0.5);
        assert_eq!(
            similarity_with(&a, &b, &rare, &common),
            similarity_with(&b, &a, &common, &common)
        );
        assert_eq!(
            similarity_with(&a, &b, &Rarity::NEUTRAL, &Rarity::NEUTRAL),
            plain
        );
        let nan = Rarity::new(f64::NAN, f64::INFINITY, f64::NEG_INFINITY);
        let s = similarity_with(&a, &b, &nan, &nan);
        assert!((0.0..=1.0).contains(&s.total), "{s:?}");
    }

    fn rarity() -> impl Strategy<Value = Rarity> {
        (-3.0..3.0f64, -3.0..3.0f64, -3.0..3.0f64).prop_map(|(f, l, c)| Rarity::new(f, l, c))
    }

    fn name() -> impl Strategy<Value = Option<String>> {
        prop::option::of(prop_oneof![
            "[a-z]{1,10}",
            Just("robert".to_owned()),
            Just("bob".to_owned()),
            Just("smith".to_owned()),
            "[a-zñé ]{0,12}",
        ])
    }

    fn match_keys() -> impl Strategy<Value = MatchKeys> {
        (
            prop_oneof![
                Just("gmail.com"),
                Just("acme.com"),
                Just("globex.es"),
                Just("outlook.com")
            ],
            "[a-z0-9]{1,4}[.]?[a-z0-9]{1,4}",
            name(),
            name(),
            prop::option::of(prop_oneof![Just("+14155552671"), Just("+34612345678")]),
            prop::option::of(prop_oneof![
                Just("Acme Inc".to_owned()),
                Just("Acme Widgets".to_owned()),
                Just("Globex".to_owned()),
                "[a-z ]{0,15}",
            ]),
        )
            .prop_map(|(domain, local, first, last, phone, company)| {
                let email = Email::parse(&format!("x{local}x@{domain}"))
                    .expect("generated e-mail is valid");
                let mut f = LeadFields::new(email);
                f.first_name = first;
                f.last_name = last;
                f.phone = phone.and_then(|p| Phone::parse(p, Region::default()).ok());
                f.company = company;
                MatchKeys::of(&f)
            })
    }

    proptest! {
        #[test]
        fn similarity_is_symmetric_and_within_0_1(a in match_keys(), b in match_keys()) {
            let ab = similarity(&a, &b);
            let ba = similarity(&b, &a);
            prop_assert_eq!(ab.total.to_bits(), ba.total.to_bits());
            prop_assert_eq!(compare(&a, &b), compare(&b, &a));
            prop_assert!((0.0..=1.0).contains(&ab.total));
            let aa = similarity(&a, &a);
            prop_assert!(aa.total >= SAME_EMAIL_FLOOR);
        }

        #[test]
        fn weighted_similarity_is_symmetric_and_within_0_1(
            a in match_keys(),
            b in match_keys(),
            ra in rarity(),
            rb in rarity(),
        ) {
            let ab = similarity_with(&a, &b, &ra, &rb);
            let ba = similarity_with(&b, &a, &rb, &ra);
            prop_assert_eq!(ab.total.to_bits(), ba.total.to_bits());
            prop_assert!((0.0..=1.0).contains(&ab.total));
            prop_assert!(similarity_with(&a, &a, &ra, &ra).total >= SAME_EMAIL_FLOOR);
        }

        #[test]
        fn fast_jaro_winkler_equals_strsim(a in "[a-e]{0,12}", b in "[a-e]{0,12}") {
            let (x, y) = if a <= b { (&a, &b) } else { (&b, &a) };
            prop_assert_eq!(jaro_winkler(&a, &b).to_bits(), strsim::jaro_winkler(x, y).to_bits());
            prop_assert_eq!(jaro_winkler(&a, &b).to_bits(), jaro_winkler(&b, &a).to_bits());
        }
    }
}
