//! An independent, FEBRL-style generator of synthetic leads with known
//! duplicates, to measure duplicate detection on data it was not tuned on.
//!
//! It follows the method of the FEBRL data generator (Christen, "Probabilistic
//! data generation for deduplication and data linkage", 2005): *original*
//! records are drawn from frequency tables, then some originals get 1 to 5
//! *duplicates*, each a copy of its original with a few corruptions, each
//! kind with its own probability. Names come from the frequency tables of
//! the FEBRL data sets (see `benches/data/README.md`), so common names are
//! common and namesakes appear at scale. Companies, e-mail addresses and
//! phone numbers (Australia, United States, United Kingdom, Spain) are built
//! here.
//!
//! Ground truth: every record carries its `entity`; two records are a true
//! pair when their entities are equal. Different entities never share an
//! e-mail address, not even up to case, dots in the local part or a
//! `+tag`; they may share a name, a company, and an e-mail local part at
//! different providers.
//!
//! About a quarter of the records are duplicates: 16 % of originals are
//! selected, and a selected one gets 1–5 duplicates (Zipf-like: 45 %, 25 %,
//! 15 %, 10 %, 5 %).
//!
//! Namesakes are more common than in a real customer base: the FEBRL tables
//! hold 848 given names and 3 011 surnames (Σp² ≈ 0.0044 each), so two
//! entities share a full name with probability ≈ 2·10⁻⁵, about an order of
//! magnitude more than with real surname distributions' long tail. Different
//! entities with the same name (and often the same local part at another
//! provider) therefore grow quadratically with `n`: at 20 000 records there
//! are about a quarter as many such pairs as true pairs, at 100 000 more of
//! them than true pairs.
//!
//! ```
//! let leads = lead_benches::febrl::generate(1_000, 7);
//! assert_eq!(leads.len(), 1_000);
//! let fields = lead_benches::febrl::to_fields(&leads[0]).unwrap();
//! assert!(fields.email.as_str().contains('@'));
//! ```

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::LazyLock;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// One generated record, as a web form would send it (raw strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLead {
    /// The true entity (person) this record describes; equal entities are duplicates.
    pub entity: u32,
    /// E-mail address as typed (always a valid address).
    pub email: String,
    /// Given name as typed.
    pub first_name: Option<String>,
    /// Surname as typed.
    pub last_name: Option<String>,
    /// Phone as typed (not always a valid number).
    pub phone: Option<String>,
    /// Company as typed.
    pub company: Option<String>,
    /// Country as typed (an ISO code or a name).
    pub country: Option<String>,
}

/// `n` records from `seed`, deterministic; duplicates of one entity are not
/// adjacent (the records are shuffled).
pub fn generate(n: usize, seed: u64) -> Vec<RawLead> {
    generate_traced(n, seed)
        .into_iter()
        .map(|t| t.lead)
        .collect()
}

/// The record as the product stores it: [`lead_core::normalize`] of a
/// [`lead_core::LeadInput`] with these fields (default
/// [`lead_core::NormalizeOptions`]). `None` only if the e-mail is refused,
/// which the generator does not do.
pub fn to_fields(lead: &RawLead) -> Option<lead_core::LeadFields> {
    lead_core::normalize(&to_input(lead), &lead_core::NormalizeOptions::default()).ok()
}

/// `lead` as a form would send it.
pub fn to_input(lead: &RawLead) -> lead_core::LeadInput {
    lead_core::LeadInput {
        email: Some(lead.email.clone()),
        first_name: lead.first_name.clone(),
        last_name: lead.last_name.clone(),
        phone: lead.phone.clone(),
        company: lead.company.clone(),
        country: lead.country.clone(),
        ..Default::default()
    }
}

/// The columns of [`write_csv`] and [`read_csv`], in order.
pub const CSV_COLUMNS: [&str; 8] = [
    "id",
    "entity",
    "email",
    "first_name",
    "last_name",
    "phone",
    "company",
    "country",
];

/// Writes CSV with header [`CSV_COLUMNS`] (`id` is the index in `leads`);
/// raw strings, empty for `None`.
pub fn write_csv<W: std::io::Write>(leads: &[RawLead], out: W) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_COLUMNS)?;
    let opt = |s: &Option<String>| s.clone().unwrap_or_default();
    for (id, l) in leads.iter().enumerate() {
        w.write_record([
            id.to_string(),
            l.entity.to_string(),
            l.email.clone(),
            opt(&l.first_name),
            opt(&l.last_name),
            opt(&l.phone),
            opt(&l.company),
            opt(&l.country),
        ])?;
    }
    w.flush()
}

/// Reads records written by [`write_csv`] (or any CSV with those column
/// names, in any order; `id` is not needed), one at a time, so a caller
/// can keep less than the whole file. Empty cells are `None`. An error
/// names the row (1 is the header) and what is wrong.
pub fn read_csv<R: std::io::Read>(
    input: R,
) -> Result<impl Iterator<Item = Result<RawLead, String>>, String> {
    let mut reader = csv::Reader::from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| format!("header: {e}"))?
        .clone();
    let mut columns = [0usize; 7];
    for (slot, name) in columns.iter_mut().zip(&CSV_COLUMNS[1..]) {
        *slot = headers
            .iter()
            .position(|h| h == *name)
            .ok_or_else(|| format!("no column {name}"))?;
    }
    let [entity, email, first, last, phone, company, country] = columns;
    Ok(reader.into_records().enumerate().map(move |(i, record)| {
        let row = i + 2;
        let record = record.map_err(|e| format!("row {row}: {e}"))?;
        let text = |c: usize| record.get(c).filter(|v| !v.is_empty()).map(str::to_owned);
        Ok(RawLead {
            entity: text(entity)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("row {row}: entity is not a number"))?,
            email: text(email).unwrap_or_default(),
            first_name: text(first),
            last_name: text(last),
            phone: text(phone),
            company: text(company),
            country: text(country),
        })
    }))
}

/// The number of true pairs (unordered pairs of records of one entity).
pub fn true_pairs(leads: &[RawLead]) -> u64 {
    let mut sizes: HashMap<u32, u64> = HashMap::new();
    for l in leads {
        *sizes.entry(l.entity).or_default() += 1;
    }
    sizes.values().map(|k| k * (k - 1) / 2).sum()
}

// ---------------------------------------------------------------------------
// Parameters

/// Share of originals that get duplicates.
const P_SELECTED: f64 = 0.16;
/// Weights of 1..=5 duplicates for a selected original.
const DUP_COUNT_WEIGHTS: [f64; 5] = [0.45, 0.25, 0.15, 0.10, 0.05];
/// Weights of 1..=3 corruptions in one duplicate.
const MODS_WEIGHTS: [f64; 3] = [0.5, 0.32, 0.18];
/// Chance that a duplicate's phone is also written another way, besides its corruptions.
const P_EXTRA_REFORMAT: f64 = 0.3;

/// The kinds of corruption of a duplicate, in the order they are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    CompanySuffixDropped,
    CompanySuffixChanged,
    CompanyAbbreviated,
    CompanyTypo,
    SwapNames,
    GivenInitial,
    TypoInsert,
    TypoDelete,
    TypoSubstitute,
    TypoTranspose,
    Ocr,
    CaseChange,
    Punctuation,
    DropGiven,
    DropSurname,
    DropPhone,
    DropCompany,
    DropCountry,
    CountryRewritten,
    EmailNewProvider,
    EmailNewLocal,
    EmailDots,
    EmailTag,
    EmailUpper,
    PhoneTypoDigit,
    PhoneTypoSwap,
    PhoneInvalid,
    PhoneReformat,
}

/// Each kind's probability weight among the corruptions of a duplicate.
const KINDS: [(Kind, f64); 28] = [
    (Kind::CompanySuffixDropped, 3.0),
    (Kind::CompanySuffixChanged, 2.0),
    (Kind::CompanyAbbreviated, 1.0),
    (Kind::CompanyTypo, 2.0),
    (Kind::SwapNames, 1.5),
    (Kind::GivenInitial, 2.0),
    (Kind::TypoInsert, 3.0),
    (Kind::TypoDelete, 3.0),
    (Kind::TypoSubstitute, 4.0),
    (Kind::TypoTranspose, 2.0),
    (Kind::Ocr, 1.5),
    (Kind::CaseChange, 3.0),
    (Kind::Punctuation, 3.0),
    (Kind::DropGiven, 1.5),
    (Kind::DropSurname, 1.5),
    (Kind::DropPhone, 4.0),
    (Kind::DropCompany, 3.0),
    (Kind::DropCountry, 2.0),
    (Kind::CountryRewritten, 1.5),
    (Kind::EmailNewProvider, 5.0),
    (Kind::EmailNewLocal, 4.0),
    (Kind::EmailDots, 2.0),
    (Kind::EmailTag, 1.5),
    (Kind::EmailUpper, 2.0),
    (Kind::PhoneTypoDigit, 3.0),
    (Kind::PhoneTypoSwap, 2.0),
    (Kind::PhoneInvalid, 1.0),
    (Kind::PhoneReformat, 6.0),
];

// ---------------------------------------------------------------------------
// Tables

/// A frequency table: values and cumulative counts, for weighted draws.
struct Freq {
    values: Vec<&'static str>,
    cumulative: Vec<u32>,
}

impl Freq {
    fn parse(text: &'static str) -> Freq {
        let mut values = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0u32;
        for line in text.lines().skip(1) {
            let Some((value, count)) = line.rsplit_once(',') else {
                continue;
            };
            let count: u32 = count.trim().parse().expect("count is a number");
            total += count;
            values.push(value);
            cumulative.push(total);
        }
        Freq { values, cumulative }
    }

    fn draw(&self, rng: &mut StdRng) -> &'static str {
        let total = *self.cumulative.last().expect("table not empty");
        let x = rng.random_range(0..total);
        let i = self.cumulative.partition_point(|&c| c <= x);
        self.values[i]
    }
}

static GIVEN: LazyLock<Freq> =
    LazyLock::new(|| Freq::parse(include_str!("../data/febrl_given_names.csv")));
static SURNAMES: LazyLock<Freq> =
    LazyLock::new(|| Freq::parse(include_str!("../data/febrl_surnames.csv")));

const COMPANY_WORDS: &[&str] = &[
    "Blue",
    "Red",
    "Green",
    "Silver",
    "Golden",
    "Northern",
    "Southern",
    "Eastern",
    "Western",
    "Pacific",
    "Atlantic",
    "Summit",
    "Pioneer",
    "Apex",
    "Coastal",
    "Harbour",
    "River",
    "Mountain",
    "Bright",
    "Swift",
    "Prime",
    "United",
    "Royal",
    "Global",
    "Metro",
    "Urban",
    "Central",
    "Alpha",
    "Delta",
    "Nova",
    "Orion",
    "Cedar",
    "Oak",
    "Maple",
    "Granite",
    "Iron",
    "Crystal",
    "Sun",
    "Star",
    "Eagle",
    "Falcon",
    "Lion",
    "Kestrel",
    "Wattle",
    "Coral",
    "Ember",
    "Horizon",
    "Vertex",
    "Quantum",
    "Sterling",
    "Redgum",
    "Bluewater",
    "Ironbark",
    "Southern Cross",
    "Highland",
    "Lakeside",
    "Bayside",
    "Oceanic",
    "Evergreen",
    "Keystone",
];

const COMPANY_NOUNS: &[&str] = &[
    "Logistics",
    "Consulting",
    "Solutions",
    "Systems",
    "Software",
    "Analytics",
    "Foods",
    "Freight",
    "Builders",
    "Construction",
    "Engineering",
    "Media",
    "Marketing",
    "Health",
    "Dental",
    "Legal",
    "Partners",
    "Holdings",
    "Capital",
    "Finance",
    "Insurance",
    "Realty",
    "Properties",
    "Energy",
    "Solar",
    "Mining",
    "Plumbing",
    "Electrical",
    "Design",
    "Studio",
    "Labs",
    "Technologies",
    "Networks",
    "Security",
    "Motors",
    "Travel",
    "Hospitality",
    "Retail",
    "Supplies",
    "Manufacturing",
    "Textiles",
    "Pharma",
    "Robotics",
    "Education",
    "Recruitment",
    "Transport",
    "Imports",
    "Agriculture",
    "Wines",
    "Group",
];

/// Legal suffixes; each inner list holds ways of writing one kind of company.
const SUFFIX_GROUPS: &[&[&str]] = &[
    &["Pty Ltd", "Pty. Ltd.", "Pty Limited", "PTY LTD"],
    &["Ltd", "Ltd.", "Limited"],
    &["Inc", "Inc.", "Incorporated"],
    &["LLC", "L.L.C."],
    &["Corp", "Corp.", "Corporation"],
    &["PLC", "plc"],
    &["S.L.", "SL", "S.L.U."],
    &["S.A.", "SA"],
    &["GmbH"],
];

/// Free e-mail providers, world-wide and by country.
const FREE_DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "proton.me",
    "gmx.com",
    "aol.com",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Country {
    Au,
    Us,
    Gb,
    Es,
}

impl Country {
    fn draw(rng: &mut StdRng) -> Country {
        match rng.random_range(0..100) {
            0..40 => Country::Au,
            40..65 => Country::Us,
            65..85 => Country::Gb,
            _ => Country::Es,
        }
    }

    /// Ways of writing the country, with weights.
    fn spellings(self) -> &'static [(&'static str, u32)] {
        match self {
            Country::Au => &[("AU", 6), ("Australia", 3), ("au", 1)],
            Country::Us => &[("US", 6), ("USA", 2), ("United States", 2)],
            Country::Gb => &[("GB", 5), ("UK", 3), ("United Kingdom", 2)],
            Country::Es => &[("ES", 5), ("Spain", 3), ("España", 2)],
        }
    }

    fn calling_code(self) -> &'static str {
        match self {
            Country::Au => "61",
            Country::Us => "1",
            Country::Gb => "44",
            Country::Es => "34",
        }
    }

    fn trunk(self) -> &'static str {
        match self {
            Country::Au | Country::Gb => "0",
            Country::Us => "1",
            Country::Es => "",
        }
    }

    fn local_domains(self) -> &'static [&'static str] {
        match self {
            Country::Au => &[
                "bigpond.com",
                "optusnet.com.au",
                "iinet.net.au",
                "yahoo.com.au",
            ],
            Country::Us => &["comcast.net", "att.net", "verizon.net", "yahoo.com"],
            Country::Gb => &["btinternet.com", "yahoo.co.uk", "sky.com", "hotmail.co.uk"],
            Country::Es => &["hotmail.es", "telefonica.net", "yahoo.es", "gmail.es"],
        }
    }

    fn company_tld(self) -> &'static str {
        match self {
            Country::Au => "com.au",
            Country::Us => "com",
            Country::Gb => "co.uk",
            Country::Es => "es",
        }
    }

    fn suffix_groups(self) -> &'static [usize] {
        match self {
            Country::Au => &[0, 0, 0, 1],
            Country::Us => &[2, 2, 3, 4],
            Country::Gb => &[1, 1, 5],
            Country::Es => &[6, 6, 7],
        }
    }
}

/// Whether [`lead_core::Region::of_country`] reads the spelling as its
/// country, so a number written without `+country` is read right. Checked
/// by a test.
fn spelling_names_region(spelling: &str) -> bool {
    !matches!(spelling, "Australia")
}

// ---------------------------------------------------------------------------
// Phones

/// A phone number: country, national significant number, how it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PhoneW {
    country: Country,
    digits: Vec<u8>,
    /// Digit group sizes of the national number.
    groups: &'static [usize],
    format: Format,
    /// Written as this instead (a value that is not a valid number).
    invalid: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    E164,
    IntlSpaced,
    IntlDashed,
    IntlTrunkZero,
    IntlDoubleZero,
    NationalSpaced,
    NationalCompact,
    NationalDashed,
    NationalDotted,
    NationalParen,
}

const FORMATS: [Format; 10] = [
    Format::E164,
    Format::IntlSpaced,
    Format::IntlDashed,
    Format::IntlTrunkZero,
    Format::IntlDoubleZero,
    Format::NationalSpaced,
    Format::NationalCompact,
    Format::NationalDashed,
    Format::NationalDotted,
    Format::NationalParen,
];

impl Format {
    /// Whether the number is read right only in its own region: `+61 (0)2 …`
    /// and `0034 …` are not read in the default region, US.
    fn needs_region(self) -> bool {
        matches!(
            self,
            Format::IntlTrunkZero
                | Format::IntlDoubleZero
                | Format::NationalSpaced
                | Format::NationalCompact
                | Format::NationalDashed
                | Format::NationalDotted
                | Format::NationalParen
        )
    }
}

fn digits_str(d: &[u8]) -> String {
    d.iter().map(|&x| char::from(b'0' + x)).collect()
}

fn random_digits(rng: &mut StdRng, prefix: &str, len: usize) -> Vec<u8> {
    let mut d: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
    while d.len() < len {
        d.push(rng.random_range(0..10));
    }
    d
}

fn new_phone(rng: &mut StdRng, country: Country, national_ok: bool) -> PhoneW {
    let (digits, groups): (Vec<u8>, &'static [usize]) = match country {
        Country::Au => {
            if rng.random_bool(0.7) {
                let p = ["40", "41", "42", "43"][rng.random_range(0..4)];
                (random_digits(rng, p, 9), &[3, 3, 3])
            } else {
                let p = ["28", "29", "38", "39", "73"][rng.random_range(0..5)];
                (random_digits(rng, p, 9), &[1, 4, 4])
            }
        }
        Country::Us => {
            let area = [
                "212", "312", "415", "617", "206", "303", "404", "512", "702", "305", "646", "718",
                "213", "602", "713",
            ][rng.random_range(0..15)];
            let mut d = random_digits(rng, area, 3);
            d.push(rng.random_range(2..10));
            let mut d = random_digits(rng, &digits_str(&d), 10);
            if d[3..6] == [5, 5, 5] || (d[4] == 1 && d[5] == 1) {
                d[4] = 3;
            }
            (d, &[3, 3, 4])
        }
        Country::Gb => {
            if rng.random_bool(0.7) {
                let p = ["73", "74", "75", "78"][rng.random_range(0..4)];
                (random_digits(rng, p, 10), &[4, 6])
            } else {
                let p = ["207", "208"][rng.random_range(0..2)];
                (random_digits(rng, p, 10), &[2, 4, 4])
            }
        }
        Country::Es => {
            if rng.random_bool(0.75) {
                let g: &'static [usize] = if rng.random_bool(0.5) {
                    &[3, 3, 3]
                } else {
                    &[3, 2, 2, 2]
                };
                (random_digits(rng, "6", 9), g)
            } else {
                let p = ["91", "93"][rng.random_range(0..2)];
                (random_digits(rng, p, 9), &[2, 3, 2, 2])
            }
        }
    };
    let format = loop {
        let f = pick_format(rng, country);
        if national_ok || !f.needs_region() {
            break f;
        }
    };
    PhoneW {
        country,
        digits,
        groups,
        format,
        invalid: None,
    }
}

fn pick_format(rng: &mut StdRng, country: Country) -> Format {
    loop {
        let f = FORMATS[rng.random_range(0..FORMATS.len())];
        let fits = match f {
            Format::IntlTrunkZero => country != Country::Es && country != Country::Us,
            Format::IntlDoubleZero => country == Country::Es || country == Country::Gb,
            Format::NationalParen => country != Country::Es,
            _ => true,
        };
        if fits {
            return f;
        }
    }
}

fn grouped(digits: &[u8], groups: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    for (i, &g) in groups.iter().enumerate() {
        let end = if i + 1 == groups.len() {
            digits.len()
        } else {
            (at + g).min(digits.len())
        };
        out.push(digits_str(&digits[at..end]));
        at = end;
    }
    out
}

impl PhoneW {
    fn render(&self) -> String {
        if let Some(s) = &self.invalid {
            return s.clone();
        }
        let cc = self.country.calling_code();
        let g = grouped(&self.digits, self.groups);
        let trunk = self.country.trunk();
        match self.format {
            Format::E164 => format!("+{cc}{}", digits_str(&self.digits)),
            Format::IntlSpaced => format!("+{cc} {}", g.join(" ")),
            Format::IntlDashed => format!("+{cc}-{}", g.join("-")),
            Format::IntlTrunkZero => format!("+{cc} ({trunk}){}", g.join(" ")),
            Format::IntlDoubleZero => format!("00{cc} {}", g.join(" ")),
            Format::NationalSpaced => {
                if self.country == Country::Us {
                    g.join(" ")
                } else {
                    format!("{trunk}{}", g.join(" "))
                }
            }
            Format::NationalCompact => {
                if self.country == Country::Us {
                    digits_str(&self.digits)
                } else {
                    format!("{trunk}{}", digits_str(&self.digits))
                }
            }
            Format::NationalDashed => {
                if self.country == Country::Us {
                    format!("1-{}", g.join("-"))
                } else {
                    format!("{trunk}{}", g.join("-"))
                }
            }
            Format::NationalDotted => {
                if self.country == Country::Us {
                    g.join(".")
                } else {
                    format!("{trunk}{}", g.join("."))
                }
            }
            Format::NationalParen => {
                if self.country == Country::Us {
                    format!("({}) {}-{}", g[0], g[1], g[2])
                } else {
                    format!("({trunk}{}) {}", g[0], g[1..].join(" "))
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Companies

#[derive(Debug, Clone)]
struct CompanyDef {
    core: String,
    suffix: Option<(usize, usize)>,
    domain: String,
}

fn new_company(rng: &mut StdRng) -> CompanyDef {
    let country = Country::draw(rng);
    let word = |rng: &mut StdRng| COMPANY_WORDS[rng.random_range(0..COMPANY_WORDS.len())];
    let noun = |rng: &mut StdRng| COMPANY_NOUNS[rng.random_range(0..COMPANY_NOUNS.len())];
    let core = match rng.random_range(0..10) {
        0..4 => format!("{} {}", word(rng), noun(rng)),
        4..6 => {
            let first = word(rng);
            let second = loop {
                let w = word(rng);
                if w != first {
                    break w;
                }
            };
            format!("{first} {second} {}", noun(rng))
        }
        6..8 => format!("{} {}", title_case(SURNAMES.draw(rng)), noun(rng)),
        8 => format!(
            "{} & {}",
            title_case(SURNAMES.draw(rng)),
            title_case(SURNAMES.draw(rng))
        ),
        _ => format!("{} & Sons", title_case(SURNAMES.draw(rng))),
    };
    let suffix = if rng.random_bool(0.85) {
        let groups = if rng.random_bool(0.03) {
            &[8][..]
        } else {
            country.suffix_groups()
        };
        let g = groups[rng.random_range(0..groups.len())];
        Some((g, rng.random_range(0..SUFFIX_GROUPS[g].len()).min(1)))
    } else {
        None
    };
    let stem: String = core
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .flat_map(|c| c.to_lowercase())
        .collect();
    let tld = if rng.random_bool(0.15) {
        "io"
    } else {
        country.company_tld()
    };
    CompanyDef {
        core,
        suffix,
        domain: format!("{stem}.{tld}"),
    }
}

// ---------------------------------------------------------------------------
// Text helpers

fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// Letters and digits of a name, lower case, for an e-mail local part.
fn slug(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

const KEYBOARD: [&str; 26] = [
    "qwsz", "vghn", "xdfv", "serfcx", "wsdr", "drtgvc", "ftyhbv", "gyujnb", "ujko", "huikmn",
    "jiolm", "kop", "njk", "bhjm", "iklp", "ol", "wa", "edft", "awedxz", "rfgy", "yhji", "cfgb",
    "qase", "zsdc", "tghu", "asx",
];

fn neighbour(rng: &mut StdRng, c: char) -> char {
    let lower = c.to_ascii_lowercase();
    let replacement = if lower.is_ascii_lowercase() {
        let n = KEYBOARD[(lower as u8 - b'a') as usize].as_bytes();
        char::from(n[rng.random_range(0..n.len())])
    } else {
        char::from(b'a' + rng.random_range(0..26u8))
    };
    if c.is_uppercase() {
        replacement.to_ascii_uppercase()
    } else {
        replacement
    }
}

/// Positions of ASCII letters in `s` (the only characters typos touch).
fn letter_positions(s: &str) -> Vec<usize> {
    s.char_indices()
        .filter(|(_, c)| c.is_ascii_alphabetic())
        .map(|(i, _)| i)
        .collect()
}

#[derive(Clone, Copy)]
enum Typo {
    Insert,
    Delete,
    Substitute,
    Transpose,
}

/// One typo in `s`; `None` when `s` is too short for it.
fn typo(rng: &mut StdRng, s: &str, kind: Typo) -> Option<String> {
    let pos = letter_positions(s);
    if pos.len() < 3 {
        return None;
    }
    let mut out = s.to_owned();
    match kind {
        Typo::Insert => {
            let i = pos[rng.random_range(0..pos.len())];
            let c = s[i..].chars().next()?;
            let ins = if rng.random_bool(0.5) {
                c
            } else {
                neighbour(rng, c)
            }
            .to_ascii_lowercase();
            out.insert(i + 1, ins);
        }
        Typo::Delete => {
            let i = pos[rng.random_range(1..pos.len())];
            out.remove(i);
        }
        Typo::Substitute => {
            let i = pos[rng.random_range(1..pos.len())];
            let c = s[i..].chars().next()?;
            let r = neighbour(rng, c);
            out.replace_range(i..i + 1, r.encode_utf8(&mut [0; 4]));
        }
        Typo::Transpose => {
            let pairs: Vec<usize> = pos
                .windows(2)
                .filter(|w| w[1] == w[0] + 1 && s.as_bytes()[w[0]] != s.as_bytes()[w[1]])
                .map(|w| w[0])
                .collect();
            if pairs.is_empty() {
                return None;
            }
            let i = pairs[rng.random_range(0..pairs.len())];
            out = swap_ascii(&out, i);
        }
    }
    (out != s).then_some(out)
}

/// `s` with the ASCII bytes at `i` and `i + 1` swapped.
fn swap_ascii(s: &str, i: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    b.swap(i, i + 1);
    String::from_utf8(b).expect("swapped two ASCII letters")
}

const OCR: [(&str, &str); 14] = [
    ("m", "rn"),
    ("rn", "m"),
    ("cl", "d"),
    ("d", "cl"),
    ("l", "1"),
    ("o", "0"),
    ("i", "l"),
    ("e", "c"),
    ("g", "q"),
    ("h", "b"),
    ("u", "v"),
    ("w", "vv"),
    ("s", "5"),
    ("b", "6"),
];

/// One OCR-like confusion in `s`.
fn ocr(rng: &mut StdRng, s: &str) -> Option<String> {
    let mut options: Vec<(usize, &str, &str)> = Vec::new();
    for (from, to) in OCR {
        for (i, _) in s.match_indices(from) {
            options.push((i, from, to));
        }
    }
    if options.is_empty() {
        return None;
    }
    let (i, from, to) = options[rng.random_range(0..options.len())];
    let mut out = s.to_owned();
    out.replace_range(i..i + from.len(), to);
    Some(out)
}

// ---------------------------------------------------------------------------
// Records

/// A record while it is built; rendered into a [`RawLead`] at the end.
#[derive(Debug, Clone)]
struct Work {
    country: Country,
    given: Option<String>,
    surname: Option<String>,
    email_local: String,
    email_domain: String,
    phone: Option<PhoneW>,
    company_core: Option<String>,
    company_suffix: Option<(usize, usize)>,
    company_sep: &'static str,
    /// A company written differently from its parts (typo, case, punctuation).
    company_text: Option<String>,
    country_text: Option<String>,
}

impl Work {
    fn company(&self) -> Option<String> {
        if let Some(t) = &self.company_text {
            return Some(t.clone());
        }
        let core = self.company_core.as_ref()?;
        Some(match self.company_suffix {
            Some((g, i)) => format!("{core}{}{}", self.company_sep, SUFFIX_GROUPS[g][i]),
            None => core.clone(),
        })
    }

    fn render(&self, entity: u32) -> RawLead {
        RawLead {
            entity,
            email: format!("{}@{}", self.email_local, self.email_domain),
            first_name: self.given.clone(),
            last_name: self.surname.clone(),
            phone: self.phone.as_ref().map(PhoneW::render),
            company: self.company(),
            country: self.country_text.clone(),
        }
    }
}

/// The key under which e-mail addresses must be unique across entities:
/// lower case, without a `+tag` and without dots in the local part.
fn email_key(local: &str, domain: &str) -> String {
    let local = local.to_ascii_lowercase();
    let local = local.split('+').next().unwrap_or_default();
    let mut key: String = local.chars().filter(|&c| c != '.').collect();
    key.push('@');
    key.push_str(&domain.to_ascii_lowercase());
    key
}

/// A local part built from the name, in one of the usual patterns.
fn local_from_name(rng: &mut StdRng, given: &str, surname: &str, digits: bool) -> String {
    let g = slug(given);
    let s = slug(surname);
    let g = if g.is_empty() { "info".to_owned() } else { g };
    let s = if s.is_empty() { "mail".to_owned() } else { s };
    let g1 = &g[..1];
    let s1 = &s[..1];
    let mut local = match rng.random_range(0..10) {
        0..3 => format!("{g}.{s}"),
        3 => format!("{g}{s}"),
        4 => format!("{g1}{s}"),
        5 => format!("{g}_{s}"),
        6 => g.clone(),
        7 => format!("{s}.{g}"),
        8 => format!("{g1}.{s}"),
        _ => format!("{g}.{s1}"),
    };
    if digits {
        let n = if rng.random_bool(0.5) {
            rng.random_range(1..100)
        } else {
            rng.random_range(1950..2010)
        };
        local.push_str(&n.to_string());
    }
    local
}

struct Generator {
    rng: StdRng,
    emails: HashMap<String, u32>,
    companies: Vec<CompanyDef>,
}

impl Generator {
    /// A generator for about `n` records: a company pool of `n / 6` (at least 64).
    fn new(n: usize, seed: u64) -> Generator {
        let mut rng = StdRng::seed_from_u64(seed);
        let pool = (n / 6).max(64);
        let companies = (0..pool).map(|_| new_company(&mut rng)).collect();
        Generator {
            rng,
            emails: HashMap::with_capacity(n + n / 4),
            companies,
        }
    }

    /// Claims `local@domain` for `entity`: false if another entity has it.
    fn claim(&mut self, local: &str, domain: &str, entity: u32) -> bool {
        match self.emails.entry(email_key(local, domain)) {
            Entry::Occupied(e) => *e.get() == entity,
            Entry::Vacant(v) => {
                v.insert(entity);
                true
            }
        }
    }

    fn domain_for(&mut self, country: Country, company: Option<&CompanyDef>) -> String {
        let rng = &mut self.rng;
        if let Some(c) = company
            && rng.random_bool(0.45)
        {
            return c.domain.clone();
        }
        if rng.random_bool(0.7) {
            FREE_DOMAINS[rng.random_range(0..FREE_DOMAINS.len())].to_owned()
        } else {
            let l = country.local_domains();
            l[rng.random_range(0..l.len())].to_owned()
        }
    }

    fn original(&mut self, entity: u32) -> Work {
        let rng = &mut self.rng;
        let country = Country::draw(rng);
        let given = title_case(GIVEN.draw(rng));
        let surname = title_case(SURNAMES.draw(rng));
        let country_text = if rng.random_bool(0.93) {
            Some(weighted(rng, country.spellings()))
        } else {
            None
        };
        let national_ok = country_text.is_some_and(spelling_names_region);
        let phone = rng
            .random_bool(0.85)
            .then(|| new_phone(rng, country, national_ok));
        let company = if rng.random_bool(0.8) {
            // Skewed: a few companies have many leads.
            let u: f64 = rng.random();
            let i = ((u * u) * self.companies.len() as f64) as usize;
            Some(self.companies[i.min(self.companies.len() - 1)].clone())
        } else {
            None
        };
        let mut tries = 0;
        let (email_local, email_domain) = loop {
            let domain = self.domain_for(country, company.as_ref());
            let digits = tries > 0 || self.rng.random_bool(0.25);
            let local = local_from_name(&mut self.rng, &given, &surname, digits);
            if self.claim(&local, &domain, entity) {
                break (local, domain);
            }
            tries += 1;
        };
        Work {
            country,
            given: Some(given),
            surname: Some(surname),
            email_local,
            email_domain,
            phone,
            company_core: company.as_ref().map(|c| c.core.clone()),
            company_suffix: company.as_ref().and_then(|c| c.suffix),
            company_sep: " ",
            company_text: None,
            country_text: country_text.map(str::to_owned),
        }
    }

    /// A duplicate of `orig` and the corruptions applied to it.
    fn duplicate(&mut self, orig: &Work, entity: u32) -> (Work, Vec<Kind>) {
        let mut w = orig.clone();
        let k = 1 + weighted_index(&mut self.rng, &MODS_WEIGHTS);
        let mut chosen: Vec<Kind> = Vec::new();
        let mut applied: Vec<Kind> = Vec::new();
        let mut attempts = 0;
        while chosen.len() < k && attempts < 50 {
            attempts += 1;
            let kind = KINDS[weighted_index(&mut self.rng, &KINDS.map(|(_, p)| p))].0;
            if !chosen.contains(&kind) {
                chosen.push(kind);
            }
        }
        if !chosen.contains(&Kind::PhoneReformat) && self.rng.random_bool(P_EXTRA_REFORMAT) {
            chosen.push(Kind::PhoneReformat);
        }
        chosen.sort();
        for kind in chosen {
            if self.apply(&mut w, kind, entity) {
                applied.push(kind);
            }
        }
        // Every duplicate differs from its original somehow.
        let mut guard = 0;
        while (applied.is_empty() || w.render(entity) == orig.render(entity)) && guard < 100 {
            guard += 1;
            let kind = KINDS[weighted_index(&mut self.rng, &KINDS.map(|(_, p)| p))].0;
            if self.apply(&mut w, kind, entity) {
                applied.push(kind);
            }
        }
        (w, applied)
    }

    /// Applies one corruption; false when it does not apply to this record.
    fn apply(&mut self, w: &mut Work, kind: Kind, entity: u32) -> bool {
        let rng = &mut self.rng;
        match kind {
            Kind::CompanySuffixDropped => {
                if w.company_text.is_some() || w.company_suffix.is_none() {
                    return false;
                }
                w.company_suffix = None;
                true
            }
            Kind::CompanySuffixChanged => {
                if w.company_text.is_some() || w.company_core.is_none() {
                    return false;
                }
                let new = match w.company_suffix {
                    Some((g, i)) if SUFFIX_GROUPS[g].len() > 1 && rng.random_bool(0.7) => {
                        let mut j = rng.random_range(0..SUFFIX_GROUPS[g].len() - 1);
                        if j >= i {
                            j += 1;
                        }
                        (g, j)
                    }
                    old => loop {
                        let g = rng.random_range(0..SUFFIX_GROUPS.len());
                        let cand = (g, rng.random_range(0..SUFFIX_GROUPS[g].len()));
                        if Some(cand) != old {
                            break cand;
                        }
                    },
                };
                w.company_suffix = Some(new);
                true
            }
            Kind::CompanyAbbreviated => {
                let Some(core) = &w.company_core else {
                    return false;
                };
                if w.company_text.is_some() {
                    return false;
                }
                let words: Vec<&str> = core.split(' ').filter(|x| *x != "&").collect();
                if words.len() < 2 {
                    return false;
                }
                let initials: String = words.iter().filter_map(|x| x.chars().next()).collect();
                w.company_core = Some(if core.contains('&') {
                    initials
                        .chars()
                        .map(String::from)
                        .collect::<Vec<_>>()
                        .join("&")
                } else if rng.random_bool(0.5) || words.len() < 3 {
                    initials
                } else {
                    words[..words.len() - 1].join(" ")
                });
                true
            }
            Kind::CompanyTypo => {
                let Some(c) = w.company() else { return false };
                let t = [
                    Typo::Insert,
                    Typo::Delete,
                    Typo::Substitute,
                    Typo::Transpose,
                ][rng.random_range(0..4)];
                match typo(rng, &c, t) {
                    Some(t) => {
                        w.company_text = Some(t);
                        true
                    }
                    None => false,
                }
            }
            Kind::SwapNames => {
                if w.given.is_none() || w.surname.is_none() || w.given == w.surname {
                    return false;
                }
                std::mem::swap(&mut w.given, &mut w.surname);
                true
            }
            Kind::GivenInitial => {
                let Some(g) = &w.given else { return false };
                let Some(c) = g.chars().next() else {
                    return false;
                };
                if g.chars().count() < 2 {
                    return false;
                }
                let dot = if rng.random_bool(0.4) { "." } else { "" };
                w.given = Some(format!("{}{dot}", c.to_ascii_uppercase()));
                true
            }
            Kind::TypoInsert | Kind::TypoDelete | Kind::TypoSubstitute | Kind::TypoTranspose => {
                let t = match kind {
                    Kind::TypoInsert => Typo::Insert,
                    Kind::TypoDelete => Typo::Delete,
                    Kind::TypoSubstitute => Typo::Substitute,
                    _ => Typo::Transpose,
                };
                let use_given = rng.random_bool(0.5);
                let order = if use_given { [0, 1] } else { [1, 0] };
                for f in order {
                    let field = if f == 0 { &mut w.given } else { &mut w.surname };
                    if let Some(v) = field
                        && let Some(t) = typo(rng, v, t)
                    {
                        *v = t;
                        return true;
                    }
                }
                false
            }
            Kind::Ocr => {
                let order = if rng.random_bool(0.5) { [0, 1] } else { [1, 0] };
                for f in order {
                    let field = if f == 0 { &mut w.given } else { &mut w.surname };
                    if let Some(v) = field
                        && let Some(t) = ocr(rng, v)
                    {
                        *v = t;
                        return true;
                    }
                }
                false
            }
            Kind::CaseChange => {
                let mut changed = false;
                let upper = rng.random_bool(0.5);
                let all = rng.random_bool(0.5);
                let company = w.company();
                for v in [&mut w.given, &mut w.surname].into_iter().flatten() {
                    let n = if upper {
                        v.to_uppercase()
                    } else {
                        v.to_lowercase()
                    };
                    if n != *v {
                        *v = n;
                        changed = true;
                    }
                    if !all {
                        break;
                    }
                }
                if (all || !changed)
                    && let Some(c) = company
                {
                    let n = if upper {
                        c.to_uppercase()
                    } else {
                        c.to_lowercase()
                    };
                    if n != c {
                        w.company_text = Some(n);
                        changed = true;
                    }
                }
                changed
            }
            Kind::Punctuation => {
                let company = w.company();
                let choice = rng.random_range(0..5);
                match choice {
                    // Spaces around a name.
                    0 => {
                        let f = if rng.random_bool(0.5) {
                            &mut w.given
                        } else {
                            &mut w.surname
                        };
                        match f {
                            Some(v) => {
                                *v = format!(" {v}  ");
                                true
                            }
                            None => false,
                        }
                    }
                    // Hyphen, apostrophe or space in a name changed.
                    1 => {
                        for f in [&mut w.given, &mut w.surname] {
                            let Some(v) = f else { continue };
                            let new = if v.contains('-') {
                                v.replace('-', " ")
                            } else if v.contains('\'') {
                                v.replace('\'', "")
                            } else if v.contains(' ') {
                                v.replace(' ', "-")
                            } else {
                                continue;
                            };
                            *v = new;
                            return true;
                        }
                        false
                    }
                    // Comma before the legal suffix.
                    2 => {
                        if w.company_text.is_none() && w.company_suffix.is_some() {
                            w.company_sep = ", ";
                            true
                        } else {
                            false
                        }
                    }
                    // Dots in the company dropped or doubled spaces.
                    _ => match company {
                        Some(c) if c.contains('.') && choice == 3 => {
                            w.company_text = Some(c.replace('.', ""));
                            true
                        }
                        Some(c) if c.contains(' ') => {
                            w.company_text = Some(c.replacen(' ', "  ", 1));
                            true
                        }
                        Some(c) if c.contains('&') => {
                            w.company_text = Some(c.replace('&', "and"));
                            true
                        }
                        _ => false,
                    },
                }
            }
            Kind::DropGiven => w.given.take().is_some(),
            Kind::DropSurname => w.surname.take().is_some(),
            Kind::DropPhone => w.phone.take().is_some(),
            Kind::DropCompany => {
                let had = w.company().is_some();
                w.company_core = None;
                w.company_text = None;
                had
            }
            Kind::DropCountry => w.country_text.take().is_some(),
            Kind::CountryRewritten => {
                let s = w.country.spellings();
                let current = w.country_text.clone();
                let options: Vec<&str> = s
                    .iter()
                    .map(|(x, _)| *x)
                    .filter(|x| Some(*x) != current.as_deref())
                    .collect();
                let mut new = options[rng.random_range(0..options.len())].to_owned();
                if rng.random_bool(0.3) {
                    new = new.to_lowercase();
                }
                if Some(&new) == current.as_ref() {
                    return false;
                }
                w.country_text = Some(new);
                true
            }
            Kind::EmailNewProvider => {
                for _ in 0..10 {
                    let domain = self.domain_for(w.country, None);
                    if domain != w.email_domain && self.claim(&w.email_local, &domain, entity) {
                        w.email_domain = domain;
                        return true;
                    }
                }
                false
            }
            Kind::EmailNewLocal => {
                let given = w.given.clone().unwrap_or_default();
                let surname = w.surname.clone().unwrap_or_default();
                for _ in 0..10 {
                    let local = local_from_name(&mut self.rng, &given, &surname, true);
                    if local != w.email_local && self.claim(&local, &w.email_domain, entity) {
                        w.email_local = local;
                        return true;
                    }
                }
                false
            }
            Kind::EmailDots => {
                let l = &w.email_local;
                if l.contains('+') {
                    return false;
                }
                let new = if l.contains('.') {
                    l.replace('.', "")
                } else {
                    let letters: Vec<usize> = (1..l.len()).collect();
                    if letters.is_empty() {
                        return false;
                    }
                    let i = letters[rng.random_range(0..letters.len())];
                    format!("{}.{}", &l[..i], &l[i..])
                };
                if new == *l {
                    return false;
                }
                w.email_local = new;
                true
            }
            Kind::EmailTag => {
                if w.email_local.contains('+') {
                    return false;
                }
                let tag = ["news", "leads", "work", "web", "promo", "2024"][rng.random_range(0..6)];
                w.email_local = format!("{}+{tag}", w.email_local);
                true
            }
            Kind::EmailUpper => {
                let l = &w.email_local;
                let new_local = match rng.random_range(0..3) {
                    0 => l.to_uppercase(),
                    1 => title_case(l),
                    _ => {
                        w.email_domain = w.email_domain.to_uppercase();
                        l.to_uppercase()
                    }
                };
                w.email_local = new_local;
                true
            }
            Kind::PhoneTypoDigit | Kind::PhoneTypoSwap => {
                let Some(p) = &mut w.phone else { return false };
                if p.invalid.is_some() {
                    return false;
                }
                let n = p.digits.len();
                if kind == Kind::PhoneTypoDigit {
                    let i = rng.random_range(1..n);
                    let old = p.digits[i];
                    let mut d = rng.random_range(0..9);
                    if d >= old {
                        d += 1;
                    }
                    p.digits[i] = d;
                    true
                } else {
                    let cands: Vec<usize> = (1..n - 1)
                        .filter(|&i| p.digits[i] != p.digits[i + 1])
                        .collect();
                    if cands.is_empty() {
                        return false;
                    }
                    let i = cands[rng.random_range(0..cands.len())];
                    p.digits.swap(i, i + 1);
                    true
                }
            }
            Kind::PhoneInvalid => {
                let Some(p) = &mut w.phone else { return false };
                if p.invalid.is_some() {
                    return false;
                }
                let d = digits_str(&p.digits);
                p.invalid = Some(match rng.random_range(0..5) {
                    0 => d[..5].to_owned(),
                    1 => format!("{d}{}", rng.random_range(10..100)),
                    2 => "0000000000".to_owned(),
                    3 => "123456".to_owned(),
                    _ => "n/a".to_owned(),
                });
                true
            }
            Kind::PhoneReformat => {
                let Some(p) = &mut w.phone else { return false };
                if p.invalid.is_some() {
                    return false;
                }
                let before = p.render();
                for _ in 0..20 {
                    p.format = pick_format(rng, p.country);
                    if p.render() != before {
                        return true;
                    }
                }
                false
            }
        }
    }
}

fn weighted<T: Copy>(rng: &mut StdRng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for (item, w) in items {
        if x < *w {
            return *item;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

fn weighted_index(rng: &mut StdRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// A generated record with how it was made (the trace is read by the tests).
#[derive(Debug, Clone)]
#[cfg_attr(not(test), allow(dead_code))]
struct Traced {
    lead: RawLead,
    /// Index of the original of this entity in the output (itself for an original).
    original: usize,
    /// The corruptions applied (empty for an original).
    kinds: Vec<Kind>,
}

fn generate_traced(n: usize, seed: u64) -> Vec<Traced> {
    let mut g = Generator::new(n, seed);
    // (lead, entity's original index before the shuffle, kinds)
    let mut out: Vec<(RawLead, usize, Vec<Kind>)> = Vec::with_capacity(n);
    let mut entity = 0u32;
    while out.len() < n {
        let orig = g.original(entity);
        let orig_at = out.len();
        out.push((orig.render(entity), orig_at, Vec::new()));
        if g.rng.random_bool(P_SELECTED) {
            let dups = 1 + weighted_index(&mut g.rng, &DUP_COUNT_WEIGHTS);
            for _ in 0..dups {
                if out.len() >= n {
                    break;
                }
                let (w, kinds) = g.duplicate(&orig, entity);
                out.push((w.render(entity), orig_at, kinds));
            }
        }
        entity += 1;
    }
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.shuffle(&mut g.rng);
    let mut new_pos = vec![0; out.len()];
    for (new, &old) in order.iter().enumerate() {
        new_pos[old] = new;
    }
    let mut slots: Vec<Option<(RawLead, usize, Vec<Kind>)>> = out.into_iter().map(Some).collect();
    order
        .iter()
        .map(|&old| {
            let (lead, orig, kinds) = slots[old].take().expect("each record once");
            Traced {
                lead,
                original: new_pos[orig],
                kinds,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
