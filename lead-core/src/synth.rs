//! Synthetic leads with known duplicates, for measuring duplicate detection
//! (feature `synth`).
//!
//! [`generate`] makes `n` leads from a seed. Each lead belongs to a person
//! (its `entity`); a share of the leads are further records of a person
//! already generated, corrupted the way real re-submissions are:
//!
//! | corruption | how often (per duplicate record) |
//! | --- | --- |
//! | same e-mail key: unchanged, upper case, Gmail dots moved, `+tag` added | 75 % |
//! | e-mail changed, from a corporate address | 25 %: the person's personal address |
//! | e-mail changed, from a personal address | 25 %: same handle at another provider (½), a new unrelated address (¼), the work address (¼, when employed) |
//! | phone (85 % of people have one; an original record shows it 85 % of the time) | left out 20 %, a second number 5 %, else the same number in another raw format |
//! | first name | nickname 12 %, typo 6 %, left out 3 %, typed in capitals 10 % |
//! | last name | typo 10 %, left out 3 %; a Spanish second surname dropped 25 % |
//! | company (85 % of people are employed; any record leaves it out 15 %) | legal form or case changed 35 %, typo 4 % |
//!
//! Some duplicates keep nothing but the name in common (a new personal
//! address, no phone, no company): no method can tell those from
//! namesakes, and they bound the recall any matcher reaches on this data
//! (about 96 % of pairs with the defaults).
//!
//! Typos are a transposition, deletion, substitution or doubled letter,
//! never on the first letter. Names come from pools of a few hundred
//! English and Spanish first names and some 300 real surnames plus
//! syllable-built ones (tens of thousands), Spanish people often carrying
//! two surnames, so a million people rarely share a full name and company.
//! Phones are unique per person by construction (a bijection of the
//! person's number), like real ones.
//!
//! Generation is deterministic for a given seed whatever the number of
//! threads: every record draws from its own generator seeded by
//! `(seed, index)`, and a person's attributes from one seeded by
//! `(seed, entity)`.
//!
//! [`evaluate`] and [`evaluate_clusters`] (from [`crate::dedup::quality`])
//! score predicted pairs or clusters against the truth.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::model::{Email, LeadFields, Phone, Region};
use crate::normalize::fix_name_case;

// Scoring against the truth lives in `dedup::quality` (always compiled,
// for `lead dedup --truth`); these names stay here for the benches.
pub use crate::dedup::quality::{PrecisionRecall, evaluate, evaluate_clusters, true_pair_count};

/// One generated lead and the person it really belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticLead {
    /// The lead as a form would have produced it, normalized.
    pub fields: LeadFields,
    /// The truth: leads with the same `entity` are the same person.
    pub entity: u32,
}

/// Generates `n` leads from `seed`; each lead after the first is, with
/// probability `dup_rate` (clamped to 0-1), another record of a person
/// picked uniformly among those generated before it.
///
/// # Example
///
/// ```
/// let leads = lead_core::synth::generate(1_000, 7, 0.2);
/// assert_eq!(leads.len(), 1_000);
/// assert_eq!(leads, lead_core::synth::generate(1_000, 7, 0.2));
/// ```
pub fn generate(n: usize, seed: u64, dup_rate: f64) -> Vec<SyntheticLead> {
    let dup_rate = if dup_rate.is_nan() {
        0.0
    } else {
        dup_rate.clamp(0.0, 1.0)
    };
    let n = n.min(u32::MAX as usize);
    // Who each record is: cheap, sequential, so the truth does not depend
    // on threads.
    let mut rng = SmallRng::seed_from_u64(mix(seed, 0x5eed));
    let mut people: u32 = 0;
    let plan: Vec<(u32, bool)> = (0..n)
        .map(|_| {
            if people > 0 && rng.random_bool(dup_rate) {
                (rng.random_range(0..people), true)
            } else {
                people += 1;
                (people - 1, false)
            }
        })
        .collect();
    let world = World {
        seed,
        companies: (people / 15).max(50),
    };
    let make = |start: usize, chunk: &[(u32, bool)]| -> Vec<SyntheticLead> {
        chunk
            .iter()
            .enumerate()
            .map(|(off, &(entity, dup))| SyntheticLead {
                fields: world.record(start + off, entity, dup),
                entity,
            })
            .collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    if threads <= 1 || n < 10_000 {
        return make(0, &plan);
    }
    let chunk_len = n.div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = plan
            .chunks(chunk_len)
            .enumerate()
            .map(|(c, chunk)| {
                let start = c * chunk_len;
                let handle = std::thread::Builder::new()
                    .name("synth".into())
                    .spawn_scoped(scope, move || make(start, chunk))
                    .ok();
                (start, chunk, handle)
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        for (start, chunk, handle) in handles {
            match handle.map(std::thread::ScopedJoinHandle::join) {
                Some(Ok(mut part)) => out.append(&mut part),
                _ => out.extend(make(start, chunk)),
            }
        }
        out
    })
}

/// SplitMix64 of two words: independent, well-spread seeds per record.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn pick<'a>(rng: &mut SmallRng, items: &[&'a str]) -> &'a str {
    items
        .get(rng.random_range(0..items.len().max(1)))
        .copied()
        .unwrap_or("")
}

/// Picks from a list, favouring its start (real surnames are Zipf-like:
/// many Smiths and Garcías).
fn pick_skewed<'a>(rng: &mut SmallRng, items: &[&'a str]) -> &'a str {
    let u: f64 = rng.random();
    let i = (u * u * items.len() as f64) as usize;
    items
        .get(i.min(items.len().saturating_sub(1)))
        .copied()
        .unwrap_or("")
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A made-up but pronounceable word of 2-3 syllables (`Norvalo`).
fn syllable_word(rng: &mut SmallRng, syllables: usize) -> String {
    let mut w = String::new();
    for _ in 0..syllables {
        w.push_str(pick(rng, SYLLABLES));
    }
    if rng.random_bool(0.4) {
        w.push_str(pick(rng, ENDINGS));
    }
    capitalize(&w)
}

/// Adds one keyboard-style typo, rarely on the first letter.
fn typo(rng: &mut SmallRng, word: &str) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    if chars.len() < 3 {
        return word.to_owned();
    }
    let i = rng.random_range(1..chars.len());
    match rng.random_range(0..4) {
        0 if i + 1 < chars.len() => chars.swap(i, i + 1),
        0 | 1 => {
            chars.remove(i);
        }
        2 => {
            let letter = b"abcdefghijklmnopqrstuvwxyz"[rng.random_range(0..26)] as char;
            chars[i] = letter;
        }
        _ => chars.insert(i, chars[i]),
    }
    chars.into_iter().collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    English,
    Spanish,
}

/// What stays true of a person across their records.
struct Person {
    profile: Profile,
    first: &'static str,
    /// Surnames (one, or two for most Spanish people).
    last: Vec<String>,
    company: Option<Company>,
    /// The address used on most records.
    email: String,
    /// The personal local part used when the person switches provider.
    handle: String,
    phone: Option<String>,
    job_title: &'static str,
}

impl Person {
    fn domain_of_email(&self) -> &str {
        self.email.rsplit('@').next().unwrap_or("")
    }
}

#[derive(Clone)]
struct Company {
    /// Distinctive name, e.g. `Norvex Systems`.
    name: String,
    /// Legal form usually written after the name.
    legal: &'static str,
    domain: String,
}

struct World {
    seed: u64,
    companies: u32,
}

impl World {
    fn company(&self, id: u32) -> Company {
        let mut rng = SmallRng::seed_from_u64(mix(self.seed ^ 0xc0, u64::from(id)));
        let syllables = rng.random_range(2..=3);
        let base = syllable_word(&mut rng, syllables);
        let name = if rng.random_bool(0.6) {
            format!("{base} {}", pick(&mut rng, COMPANY_WORDS))
        } else {
            base
        };
        let legal = pick(&mut rng, LEGAL_FORMS);
        let tld = pick(&mut rng, &["com", "com", "io", "es", "co.uk", "net"]);
        let domain = format!("{}.{tld}", crate::fold_text(&name));
        Company {
            name,
            legal,
            domain,
        }
    }

    fn person(&self, entity: u32) -> Person {
        let mut rng = SmallRng::seed_from_u64(mix(self.seed ^ 0xe0, u64::from(entity)));
        let profile = if rng.random_bool(0.45) {
            Profile::Spanish
        } else {
            Profile::English
        };
        let female = rng.random_bool(0.5);
        let first = match (profile, female) {
            (Profile::English, false) => pick(&mut rng, EN_MALE),
            (Profile::English, true) => pick(&mut rng, EN_FEMALE),
            (Profile::Spanish, false) => pick(&mut rng, ES_MALE),
            (Profile::Spanish, true) => pick(&mut rng, ES_FEMALE),
        };
        let surname = |rng: &mut SmallRng| {
            if rng.random_bool(0.45) {
                let syllables = rng.random_range(2..=3);
                syllable_word(rng, syllables)
            } else if profile == Profile::Spanish {
                pick_skewed(rng, ES_SURNAMES).to_owned()
            } else {
                pick_skewed(rng, EN_SURNAMES).to_owned()
            }
        };
        let mut last = vec![surname(&mut rng)];
        if profile == Profile::Spanish && rng.random_bool(0.7) {
            last.push(surname(&mut rng));
        }
        let company = rng
            .random_bool(0.85)
            .then(|| self.company(rng.random_range(0..self.companies)));
        let f = crate::fold_text(first);
        let l = crate::fold_text(&last[0]);
        let initial = f.get(..1).unwrap_or("x");
        let handle = match rng.random_range(0..5) {
            0 => format!("{f}.{l}"),
            1 => format!("{f}{l}"),
            2 => format!("{initial}{l}"),
            3 => format!("{f}_{l}"),
            _ => format!("{l}.{f}"),
        };
        // Popular providers hand out numbered addresses: distinct people
        // with one name rarely share an address.
        let handle = format!("{handle}{}", rng.random_range(1..10_000));
        let email = match &company {
            Some(c) if rng.random_bool(0.6) => {
                // Companies hand out one address per person: patterns
                // that rarely clash inside one company.
                let local = match rng.random_range(0..3) {
                    0 => format!("{f}.{l}"),
                    1 => format!("{initial}{l}"),
                    _ => format!("{f}{}", l.get(..1).unwrap_or("")),
                };
                format!("{local}@{}", c.domain)
            }
            _ => format!("{handle}@{}", pick(&mut rng, PROVIDERS)),
        };
        let phone = rng.random_bool(0.85).then(|| phone_of(entity, profile));
        Person {
            profile,
            first,
            last,
            company,
            email,
            handle,
            phone,
            job_title: pick(&mut rng, JOB_TITLES),
        }
    }

    /// One record of `entity`: the plain record, or a corrupted duplicate.
    fn record(&self, index: usize, entity: u32, dup: bool) -> LeadFields {
        let p = self.person(entity);
        let mut rng = SmallRng::seed_from_u64(mix(self.seed ^ 0x1ead, index as u64));
        let region = match p.profile {
            Profile::English => Region::default(),
            Profile::Spanish => Region::parse("ES").unwrap_or_default(),
        };

        let mut email = p.email.clone();
        let mut first = Some(p.first.to_owned());
        let mut last: Vec<String> = p.last.clone();
        let mut last_shown = true;
        let mut phone = p.phone.clone();
        let mut company = p
            .company
            .as_ref()
            .map(|c| format!("{} {}", c.name, c.legal).trim().to_owned());
        let mut job = rng.random_bool(0.6).then(|| p.job_title.to_owned());
        if rng.random_bool(0.15) {
            company = None;
        }

        if dup {
            let personal = PROVIDERS.contains(&p.domain_of_email());
            let r: f64 = rng.random();
            if r < 0.75 {
                email = variant_of(&mut rng, &email);
            } else if !personal {
                // Corporate → the person's own personal address.
                email = format!("{}@{}", p.handle, pick(&mut rng, PROVIDERS));
            } else {
                let r: f64 = rng.random();
                if r < 0.5 {
                    // Same handle at another provider.
                    let provider = other_provider(&mut rng, p.domain_of_email());
                    email = format!("{}@{provider}", p.handle);
                } else if let (true, Some(c)) = (r >= 0.75, &p.company) {
                    let f = crate::fold_text(p.first);
                    email = format!("{f}.{}@{}", crate::fold_text(&p.last[0]), c.domain);
                } else {
                    // A new address, unlike the old one.
                    let provider = other_provider(&mut rng, p.domain_of_email());
                    let f = crate::fold_text(p.first);
                    let l = crate::fold_text(&p.last[0]);
                    email = format!("{l}{f}{}@{provider}", rng.random_range(10..100_000));
                }
            }
            if p.phone.is_some() {
                let r: f64 = rng.random();
                if r < 0.20 {
                    phone = None;
                } else if r < 0.25 {
                    phone = Some(phone_of(entity.wrapping_add(0x4000_0000), p.profile));
                }
            }
            let r: f64 = rng.random();
            if r < 0.12 {
                first = Some(nickname(&mut rng, p.first).to_owned());
            } else if r < 0.18 {
                first = Some(typo(&mut rng, p.first));
            } else if r < 0.21 {
                first = None;
            }
            let r: f64 = rng.random();
            if r < 0.10 {
                let i = rng.random_range(0..last.len());
                last[i] = typo(&mut rng, &last[i]);
            } else if r < 0.13 {
                last_shown = false;
            }
            if last.len() > 1 && rng.random_bool(0.25) {
                last.truncate(1);
            }
            if let (Some(c), Some(_)) = (&p.company, &company) {
                let r: f64 = rng.random();
                if r < 0.35 {
                    let legal = pick(&mut rng, LEGAL_FORMS);
                    let name = if rng.random_bool(0.3) {
                        c.name.to_uppercase()
                    } else {
                        c.name.clone()
                    };
                    company = Some(format!("{name} {legal}").trim().to_owned());
                } else if r < 0.39 {
                    company = Some(typo(&mut rng, &c.name));
                }
            }
            if rng.random_bool(0.1) {
                first = first.map(|f| f.to_uppercase());
                job = job.map(|j| j.to_lowercase());
            }
        }
        if !dup && rng.random_bool(0.03) {
            first = None;
        }
        // A person without a phone still sometimes gives none; one with a
        // phone leaves it out of some forms.
        if phone.is_some() && !dup && rng.random_bool(0.15) {
            phone = None;
        }

        let email = Email::parse(&email)
            .or_else(|_| Email::parse(&format!("person{entity}@example.com")))
            .expect("person<digits>@example.com is a valid address");
        let mut fields = LeadFields::new(email);
        fields.first_name = first.filter(|f| !f.is_empty()).map(|f| fix_name_case(&f));
        fields.last_name = last_shown.then(|| fix_name_case(&last.join(" ")));
        fields.phone = phone.and_then(|raw| Phone::parse(&raw_phone(&mut rng, &raw), region).ok());
        fields.company = company;
        fields.job_title = job;
        fields.country = Some(match p.profile {
            Profile::English => "US".to_owned(),
            Profile::Spanish => "ES".to_owned(),
        });
        fields.source = Some(pick(&mut rng, &["web", "google", "linkedin", "referral"]).to_owned());
        fields
    }
}

/// A provider other than `current`.
fn other_provider(rng: &mut SmallRng, current: &str) -> &'static str {
    let start = rng.random_range(0..PROVIDERS.len());
    (0..PROVIDERS.len())
        .map(|i| PROVIDERS[(start + i) % PROVIDERS.len()])
        .find(|p| *p != current)
        .unwrap_or(PROVIDERS[0])
}

/// The same address written another way: upper case, Gmail dots moved or a
/// `+tag` added (all the same e-mail key).
fn variant_of(rng: &mut SmallRng, email: &str) -> String {
    let Some((local, domain)) = email.split_once('@') else {
        return email.to_owned();
    };
    match rng.random_range(0..4) {
        0 => email.to_uppercase(),
        1 if domain == "gmail.com" => {
            let plain = local.replace('.', "");
            let cut = rng.random_range(1..plain.len().max(2)).min(plain.len());
            format!("{}.{}@{domain}", &plain[..cut], &plain[cut..]).replace(".@", "@")
        }
        2 => format!(
            "{local}+{}@{domain}",
            pick(rng, &["news", "promo", "crm", "x"])
        ),
        _ => email.to_owned(),
    }
}

/// A unique phone number for a person, in E.164: the person's number
/// through a bijection, so two people never share one.
fn phone_of(entity: u32, profile: Profile) -> String {
    match profile {
        Profile::Spanish => {
            // x -> x * odd (not a multiple of 5) is a bijection mod 10^8.
            let n = (u64::from(entity) * 2_654_435_761) % 100_000_000;
            format!("+346{n:08}")
        }
        Profile::English => {
            let n = (u64::from(entity) * 2_654_435_761) % 8_000_000;
            let area = US_AREAS[(entity as usize / 8_000_000 + entity as usize) % US_AREAS.len()];
            format!("+1{area}{}{:06}", 2 + n / 1_000_000, n % 1_000_000)
        }
    }
}

/// An E.164 number as a person might type it.
fn raw_phone(rng: &mut SmallRng, e164: &str) -> String {
    let digits = e164.trim_start_matches('+');
    let national = digits
        .strip_prefix("34")
        .or_else(|| digits.strip_prefix('1'))
        .unwrap_or(digits);
    let part = |from: usize, to: usize| national.get(from..to).unwrap_or("");
    match (national.len(), rng.random_range(0..4)) {
        (_, 0) => e164.to_owned(),
        (9, 1) => format!(
            "{} {} {} {}",
            part(0, 3),
            part(3, 5),
            part(5, 7),
            part(7, 9)
        ),
        (9, 2) => format!("+34 {}-{}-{}", part(0, 3), part(3, 6), part(6, 9)),
        (10, 1) => format!("({}) {}-{}", part(0, 3), part(3, 6), part(6, 10)),
        (10, 2) => format!("{}.{}.{}", part(0, 3), part(3, 6), part(6, 10)),
        _ => national.to_owned(),
    }
}

/// A nickname of a first name, or the name itself when it has none.
fn nickname(rng: &mut SmallRng, first: &'static str) -> &'static str {
    NICKNAMES
        .iter()
        .find(|(formal, _)| *formal == first)
        .map_or(first, |(_, nicks)| pick(rng, nicks))
}

const SYLLABLES: &[&str] = &[
    "al", "ber", "cor", "dan", "el", "fen", "gar", "hol", "ir", "jas", "kel", "lor", "mar", "nor",
    "ol", "pel", "quin", "ros", "sal", "tor", "ul", "val", "wen", "xan", "yor", "zan", "bra",
    "cla", "dre", "fro", "gri", "kra", "lin", "mon", "nev", "par", "ren", "sti", "tam", "vor",
    "bel", "cas", "dor", "fal", "gon", "har", "lam", "mer", "ner", "pra",
];
const ENDINGS: &[&str] = &["a", "o", "er", "son", "ez", "ton", "ley", "is", "ell", "ov"];
const COMPANY_WORDS: &[&str] = &[
    "Systems",
    "Labs",
    "Solutions",
    "Foods",
    "Logistics",
    "Consulting",
    "Technologies",
    "Partners",
    "Media",
    "Energy",
    "Health",
    "Analytics",
    "Software",
    "Industries",
    "Capital",
    "Retail",
    "Motors",
    "Pharma",
    "Networks",
    "Studio",
];
const LEGAL_FORMS: &[&str] = &[
    "",
    "",
    "Inc",
    "Inc.",
    "Corp",
    "Corporation",
    "LLC",
    "Ltd",
    "Ltd.",
    "S.L.",
    "S.A.",
    "GmbH",
    "Co.",
    "PLC",
];
const PROVIDERS: &[&str] = &[
    "gmail.com",
    "gmail.com",
    "gmail.com",
    "outlook.com",
    "hotmail.com",
    "yahoo.com",
    "icloud.com",
    "proton.me",
    "hotmail.es",
    "yahoo.es",
];
const US_AREAS: &[&str] = &[
    "212", "312", "415", "617", "646", "202", "305", "512", "206", "303", "404", "713", "818",
    "917", "718", "213", "310", "408", "503", "602",
];
const JOB_TITLES: &[&str] = &[
    "CEO",
    "CTO",
    "VP Sales",
    "Marketing Manager",
    "Head of Operations",
    "Software Engineer",
    "Director de Ventas",
    "Gerente",
    "Product Manager",
    "Analyst",
    "Founder",
    "Consultant",
];

const EN_MALE: &[&str] = &[
    "James",
    "John",
    "Robert",
    "Michael",
    "William",
    "David",
    "Richard",
    "Joseph",
    "Thomas",
    "Charles",
    "Christopher",
    "Daniel",
    "Matthew",
    "Anthony",
    "Mark",
    "Donald",
    "Steven",
    "Paul",
    "Andrew",
    "Joshua",
    "Kenneth",
    "Kevin",
    "Brian",
    "George",
    "Timothy",
    "Ronald",
    "Edward",
    "Jason",
    "Jeffrey",
    "Ryan",
    "Jacob",
    "Gary",
    "Nicholas",
    "Eric",
    "Jonathan",
    "Stephen",
    "Larry",
    "Justin",
    "Scott",
    "Brandon",
    "Benjamin",
    "Samuel",
    "Gregory",
    "Alexander",
    "Frank",
    "Patrick",
    "Raymond",
    "Jack",
    "Dennis",
    "Jerry",
    "Tyler",
    "Aaron",
    "Henry",
    "Adam",
    "Douglas",
    "Nathan",
    "Peter",
    "Zachary",
    "Kyle",
    "Walter",
    "Harold",
    "Jeremy",
    "Ethan",
    "Carl",
    "Keith",
    "Roger",
    "Gerald",
    "Christian",
    "Terry",
    "Sean",
    "Arthur",
    "Austin",
    "Noah",
    "Lawrence",
    "Jesse",
    "Joe",
    "Bryan",
    "Billy",
    "Jordan",
    "Albert",
    "Dylan",
    "Bruce",
    "Willie",
    "Gabriel",
    "Alan",
    "Juan",
    "Logan",
    "Wayne",
    "Ralph",
    "Roy",
    "Eugene",
    "Randy",
    "Vincent",
    "Russell",
    "Louis",
    "Philip",
    "Bobby",
    "Johnny",
    "Bradley",
    "Oliver",
    "Liam",
    "Mason",
    "Lucas",
    "Owen",
];
const EN_FEMALE: &[&str] = &[
    "Mary",
    "Patricia",
    "Jennifer",
    "Linda",
    "Elizabeth",
    "Barbara",
    "Susan",
    "Jessica",
    "Sarah",
    "Karen",
    "Lisa",
    "Nancy",
    "Betty",
    "Margaret",
    "Sandra",
    "Ashley",
    "Kimberly",
    "Emily",
    "Donna",
    "Michelle",
    "Carol",
    "Amanda",
    "Dorothy",
    "Melissa",
    "Deborah",
    "Stephanie",
    "Rebecca",
    "Sharon",
    "Laura",
    "Cynthia",
    "Kathleen",
    "Amy",
    "Angela",
    "Shirley",
    "Anna",
    "Brenda",
    "Pamela",
    "Emma",
    "Nicole",
    "Helen",
    "Samantha",
    "Katherine",
    "Christine",
    "Debra",
    "Rachel",
    "Carolyn",
    "Janet",
    "Catherine",
    "Maria",
    "Heather",
    "Diane",
    "Ruth",
    "Julie",
    "Olivia",
    "Joyce",
    "Virginia",
    "Victoria",
    "Kelly",
    "Lauren",
    "Christina",
    "Joan",
    "Evelyn",
    "Judith",
    "Megan",
    "Andrea",
    "Cheryl",
    "Hannah",
    "Jacqueline",
    "Martha",
    "Gloria",
    "Teresa",
    "Ann",
    "Sara",
    "Madison",
    "Frances",
    "Kathryn",
    "Janice",
    "Jean",
    "Abigail",
    "Alice",
    "Julia",
    "Judy",
    "Sophia",
    "Grace",
    "Denise",
    "Amber",
    "Doris",
    "Marilyn",
    "Danielle",
    "Beverly",
    "Isabella",
    "Theresa",
    "Diana",
    "Natalie",
    "Brittany",
    "Charlotte",
    "Marie",
    "Kayla",
    "Alexis",
    "Lori",
    "Chloe",
    "Zoe",
    "Lily",
    "Ava",
    "Mia",
];
const ES_MALE: &[&str] = &[
    "José",
    "Antonio",
    "Manuel",
    "Francisco",
    "Juan",
    "David",
    "José Antonio",
    "José Luis",
    "Javier",
    "Jesús",
    "Carlos",
    "Daniel",
    "Miguel",
    "Rafael",
    "Pedro",
    "Alejandro",
    "Ángel",
    "Fernando",
    "Pablo",
    "Luis",
    "Sergio",
    "Jorge",
    "Alberto",
    "Juan Carlos",
    "Juan José",
    "Álvaro",
    "Diego",
    "Adrián",
    "Raúl",
    "Enrique",
    "Ramón",
    "Vicente",
    "Iván",
    "Rubén",
    "Óscar",
    "Andrés",
    "Joaquín",
    "Santiago",
    "Eduardo",
    "Víctor",
    "Roberto",
    "Jaime",
    "Francisco Javier",
    "Mario",
    "Ignacio",
    "Alfonso",
    "Salvador",
    "Ricardo",
    "Marcos",
    "Jordi",
    "Emilio",
    "Julián",
    "Julio",
    "Guillermo",
    "Gabriel",
    "Tomás",
    "Agustín",
    "Gonzalo",
    "Félix",
    "Hugo",
    "Mateo",
    "Lucas",
    "Martín",
    "Nicolás",
    "Samuel",
    "Héctor",
    "Cristian",
    "Marc",
    "Aitor",
    "Iker",
    "Rodrigo",
    "Gustavo",
    "Esteban",
    "Felipe",
    "Armando",
    "Arturo",
    "Sebastián",
    "Mauricio",
    "Leonardo",
    "Gerardo",
    "Ernesto",
    "Emiliano",
    "Rogelio",
    "Humberto",
    "Alfredo",
    "Octavio",
];
const ES_FEMALE: &[&str] = &[
    "María Carmen",
    "María",
    "Carmen",
    "Ana María",
    "Laura",
    "María Pilar",
    "María Dolores",
    "Isabel",
    "Josefa",
    "Ana",
    "Cristina",
    "Marta",
    "María Teresa",
    "Lucía",
    "Francisca",
    "Antonia",
    "Dolores",
    "Sara",
    "Paula",
    "Elena",
    "María Ángeles",
    "Raquel",
    "Rosa María",
    "Pilar",
    "Concepción",
    "Manuela",
    "Mercedes",
    "María José",
    "Beatriz",
    "Rocío",
    "Julia",
    "Nuria",
    "Silvia",
    "Irene",
    "Alba",
    "Patricia",
    "Montserrat",
    "Andrea",
    "Rosario",
    "Teresa",
    "Encarnación",
    "Mónica",
    "Alicia",
    "Sonia",
    "Sandra",
    "Marina",
    "Susana",
    "Yolanda",
    "Natalia",
    "Margarita",
    "María Jesús",
    "Inmaculada",
    "Eva",
    "Claudia",
    "Sofía",
    "Esther",
    "Noelia",
    "Verónica",
    "Carolina",
    "Ángela",
    "Victoria",
    "Amparo",
    "Lorena",
    "Guadalupe",
    "Valeria",
    "Daniela",
    "Gabriela",
    "Fernanda",
    "Ximena",
    "Consuelo",
    "Soledad",
    "Catalina",
    "Leticia",
    "Lourdes",
    "Graciela",
    "Esperanza",
    "Adriana",
    "Mariana",
    "Camila",
    "Valentina",
    "Jimena",
    "Luisa",
    "Milagros",
    "Trinidad",
    "Remedios",
    "Asunción",
    "Begoña",
    "Ainhoa",
];
const EN_SURNAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Hill",
    "Green",
    "Adams",
    "Baker",
    "Nelson",
    "Carter",
    "Mitchell",
    "Roberts",
    "Turner",
    "Phillips",
    "Campbell",
    "Parker",
    "Evans",
    "Edwards",
    "Collins",
    "Stewart",
    "Morris",
    "Murphy",
    "Cook",
    "Rogers",
    "Morgan",
    "Cooper",
    "Peterson",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Cox",
    "Ward",
    "Richardson",
    "Watson",
    "Brooks",
    "Wood",
    "James",
    "Bennett",
    "Gray",
    "Hughes",
    "Price",
    "Sanders",
    "Myers",
    "Long",
    "Ross",
    "Foster",
    "Powell",
    "Jenkins",
    "Perry",
    "Russell",
    "Sullivan",
    "Bell",
    "Coleman",
    "Butler",
    "Henderson",
    "Barnes",
    "Fisher",
    "Vasquez",
    "Simmons",
    "Graham",
    "Marshall",
    "Owens",
    "Harrison",
    "Gibson",
    "Wallace",
    "West",
    "Cole",
    "Hayes",
    "Bryant",
    "Ellis",
    "Stevens",
    "Murray",
    "Ford",
    "Hamilton",
    "Wells",
    "Chapman",
    "Webb",
    "Tucker",
    "Porter",
    "Hunter",
    "Hicks",
    "Crawford",
    "Henry",
    "Boyd",
    "Mason",
    "Kennedy",
    "Warren",
    "Dixon",
    "Burns",
    "Gordon",
    "Shaw",
    "Holmes",
    "Rice",
    "Robertson",
    "Hunt",
    "Black",
    "Daniels",
    "Palmer",
    "Mills",
    "Grant",
    "Knight",
    "Ferguson",
    "Stone",
    "Hawkins",
    "Dunn",
    "Perkins",
    "Hudson",
    "Spencer",
    "Stephens",
    "Pierce",
    "Hansen",
    "Payne",
    "Elliott",
    "Armstrong",
    "Carroll",
    "Fletcher",
    "Lawrence",
    "Riley",
    "Berry",
    "Lane",
    "Weaver",
    "Andrews",
    "Ryan",
    "O'Brien",
    "McDonald",
    "O'Connor",
    "MacLeod",
    "Fitzgerald",
    "Schneider",
    "Novak",
    "Walsh",
];
const ES_SURNAMES: &[&str] = &[
    "García",
    "Rodríguez",
    "González",
    "Fernández",
    "López",
    "Martínez",
    "Sánchez",
    "Pérez",
    "Gómez",
    "Martín",
    "Jiménez",
    "Ruiz",
    "Hernández",
    "Díaz",
    "Moreno",
    "Muñoz",
    "Álvarez",
    "Romero",
    "Alonso",
    "Gutiérrez",
    "Navarro",
    "Torres",
    "Domínguez",
    "Vázquez",
    "Ramos",
    "Gil",
    "Ramírez",
    "Serrano",
    "Blanco",
    "Molina",
    "Morales",
    "Suárez",
    "Ortega",
    "Delgado",
    "Castro",
    "Ortiz",
    "Rubio",
    "Marín",
    "Sanz",
    "Núñez",
    "Iglesias",
    "Medina",
    "Garrido",
    "Cortés",
    "Castillo",
    "Santos",
    "Lozano",
    "Guerrero",
    "Cano",
    "Prieto",
    "Méndez",
    "Cruz",
    "Calvo",
    "Gallego",
    "Vidal",
    "León",
    "Márquez",
    "Herrera",
    "Peña",
    "Flores",
    "Cabrera",
    "Campos",
    "Vega",
    "Fuentes",
    "Carrasco",
    "Diez",
    "Caballero",
    "Reyes",
    "Nieto",
    "Aguilar",
    "Pascual",
    "Santana",
    "Herrero",
    "Lorenzo",
    "Montero",
    "Hidalgo",
    "Giménez",
    "Ibáñez",
    "Ferrer",
    "Durán",
    "Santiago",
    "Benítez",
    "Mora",
    "Vicente",
    "Vargas",
    "Arias",
    "Carmona",
    "Crespo",
    "Román",
    "Pastor",
    "Soto",
    "Sáez",
    "Velasco",
    "Moya",
    "Soler",
    "Parra",
    "Esteban",
    "Bravo",
    "Gallardo",
    "Rojas",
    "Pardo",
    "Merino",
    "Franco",
    "Espinosa",
    "Izquierdo",
    "Lara",
    "Rivas",
    "Silva",
    "Rivera",
    "Casado",
    "Arroyo",
    "Redondo",
    "Camacho",
    "Rey",
    "Vera",
    "Otero",
    "Luque",
    "Galán",
    "Montes",
    "Ríos",
    "Sierra",
    "Segura",
    "Carrillo",
    "Marcos",
    "Marti",
    "Soriano",
    "Mendoza",
    "Robles",
    "Bernal",
    "Vila",
    "Valero",
    "Exposito",
    "Benito",
    "Varela",
    "Andrés",
    "Heredia",
    "Aguirre",
    "Echeverría",
    "Zapata",
    "Salazar",
    "Villanueva",
    "Contreras",
    "Bustos",
    "Quintero",
];
const NICKNAMES: &[(&str, &[&str])] = &[
    ("Robert", &["Bob", "Rob", "Bobby"]),
    ("William", &["Bill", "Will", "Billy"]),
    ("Richard", &["Rick", "Rich", "Dick"]),
    ("James", &["Jim", "Jimmy", "Jamie"]),
    ("John", &["Johnny", "Jack"]),
    ("Michael", &["Mike", "Mikey"]),
    ("Thomas", &["Tom", "Tommy"]),
    ("Charles", &["Charlie", "Chuck"]),
    ("Joseph", &["Joe", "Joey"]),
    ("Daniel", &["Dan", "Danny"]),
    ("David", &["Dave"]),
    ("Matthew", &["Matt"]),
    ("Christopher", &["Chris", "Kit"]),
    ("Anthony", &["Tony"]),
    ("Andrew", &["Andy", "Drew"]),
    ("Edward", &["Ed", "Eddie", "Ted"]),
    ("Steven", &["Steve"]),
    ("Benjamin", &["Ben", "Benny"]),
    ("Samuel", &["Sam"]),
    ("Alexander", &["Alex"]),
    ("Nicholas", &["Nick"]),
    ("Patrick", &["Pat", "Paddy"]),
    ("Peter", &["Pete"]),
    ("Timothy", &["Tim"]),
    ("Kenneth", &["Ken", "Kenny"]),
    ("Gregory", &["Greg"]),
    ("Ronald", &["Ron", "Ronnie"]),
    ("Donald", &["Don"]),
    ("Jeffrey", &["Jeff"]),
    ("Jonathan", &["Jon"]),
    ("Lawrence", &["Larry"]),
    ("Raymond", &["Ray"]),
    ("Gerald", &["Jerry", "Gerry"]),
    ("Douglas", &["Doug"]),
    ("Nathan", &["Nate"]),
    ("Zachary", &["Zach", "Zack"]),
    ("Elizabeth", &["Liz", "Beth", "Betty", "Lizzie"]),
    ("Margaret", &["Maggie", "Peggy", "Meg"]),
    ("Katherine", &["Kate", "Katie", "Kathy"]),
    ("Catherine", &["Cathy", "Kate"]),
    ("Jennifer", &["Jen", "Jenny"]),
    ("Jessica", &["Jess", "Jessie"]),
    ("Patricia", &["Patty", "Trish", "Pat"]),
    ("Susan", &["Sue", "Susie"]),
    ("Rebecca", &["Becky", "Becca"]),
    ("Victoria", &["Vicky", "Tori"]),
    ("Christina", &["Tina", "Chris"]),
    ("Samantha", &["Sam"]),
    ("Deborah", &["Debbie", "Deb"]),
    ("Pamela", &["Pam"]),
    ("Kimberly", &["Kim"]),
    ("Abigail", &["Abby"]),
    ("Stephanie", &["Steph"]),
    ("Amanda", &["Mandy"]),
    ("Jacqueline", &["Jackie"]),
    ("Dorothy", &["Dot", "Dottie"]),
    ("Frances", &["Fran"]),
    ("Judith", &["Judy"]),
    ("Natalie", &["Nat"]),
    ("José", &["Pepe", "Chema"]),
    ("José Antonio", &["Josean", "Toni"]),
    ("José Luis", &["Joselu", "Pepelu"]),
    ("Francisco", &["Paco", "Pancho", "Curro"]),
    ("Francisco Javier", &["Javi", "Fran"]),
    ("Ignacio", &["Nacho"]),
    ("Manuel", &["Manolo", "Manu"]),
    ("Enrique", &["Kike", "Quique"]),
    ("Jesús", &["Chus", "Chucho", "Suso"]),
    ("Antonio", &["Toño", "Toni"]),
    ("Alejandro", &["Álex", "Ale"]),
    ("Guillermo", &["Guille", "Memo"]),
    ("Eduardo", &["Edu", "Lalo"]),
    ("Rafael", &["Rafa"]),
    ("Fernando", &["Nando", "Fer"]),
    ("Javier", &["Javi"]),
    ("Santiago", &["Santi"]),
    ("Sebastián", &["Sebas"]),
    ("Alberto", &["Beto"]),
    ("Roberto", &["Beto", "Rober"]),
    ("Juan Carlos", &["Juanca"]),
    ("Dolores", &["Lola", "Loli"]),
    ("María Dolores", &["Lola", "Loli"]),
    ("Mercedes", &["Merche"]),
    ("Concepción", &["Concha", "Conchi"]),
    ("María José", &["Majo", "Marijose"]),
    ("María Carmen", &["Maricarmen", "Mamen", "Carmen"]),
    ("Rosario", &["Charo"]),
    ("Guadalupe", &["Lupe"]),
    ("María Pilar", &["Pili", "Pilar"]),
    ("Pilar", &["Pili"]),
    ("Teresa", &["Tere"]),
    ("María Teresa", &["Maite", "Tere"]),
    ("Isabel", &["Isa", "Chabela"]),
    ("Montserrat", &["Montse"]),
    ("Inmaculada", &["Inma"]),
    ("Soledad", &["Sole"]),
    ("Consuelo", &["Chelo"]),
    ("Josefa", &["Pepa", "Fina"]),
    ("Francisca", &["Paca", "Paqui"]),
    ("Cristina", &["Cris"]),
    ("Daniela", &["Dani"]),
    ("Gabriela", &["Gabi"]),
    ("Encarnación", &["Encarna"]),
    ("Margarita", &["Marga"]),
    ("Beatriz", &["Bea"]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_sized() {
        let a = generate(2_000, 42, 0.25);
        let b = generate(2_000, 42, 0.25);
        assert_eq!(a, b);
        assert_eq!(a.len(), 2_000);
        assert_ne!(a, generate(2_000, 43, 0.25));
    }

    #[test]
    fn duplicate_share_follows_dup_rate() {
        let leads = generate(20_000, 1, 0.2);
        let people: std::collections::HashSet<u32> = leads.iter().map(|l| l.entity).collect();
        let dup_share = 1.0 - people.len() as f64 / leads.len() as f64;
        assert!((0.18..0.22).contains(&dup_share), "{dup_share}");
        assert!(
            generate(100, 1, 0.0)
                .iter()
                .enumerate()
                .all(|(i, l)| l.entity as usize == i)
        );
    }

    #[test]
    fn most_phones_parse_and_people_do_not_share_them() {
        let leads = generate(20_000, 3, 0.0);
        let phones: Vec<&str> = leads
            .iter()
            .filter_map(|l| l.fields.phone.as_ref())
            .map(|p| p.as_str())
            .collect();
        assert!(phones.len() > 20_000 * 55 / 100, "{} phones", phones.len());
        let distinct: std::collections::HashSet<&str> = phones.iter().copied().collect();
        assert_eq!(distinct.len(), phones.len());
    }

    #[test]
    fn distinct_people_rarely_share_an_email_key() {
        let leads = generate(50_000, 5, 0.0);
        let keys: std::collections::HashSet<String> = leads
            .iter()
            .map(|l| crate::email_match_key(&l.fields.email))
            .collect();
        assert!(
            keys.len() as f64 > 0.998 * leads.len() as f64,
            "{} distinct",
            keys.len()
        );
    }

    #[test]
    fn typos_change_one_letter_and_keep_the_first() {
        let mut rng = SmallRng::seed_from_u64(9);
        for _ in 0..200 {
            let t = typo(&mut rng, "Francisco");
            assert!(t.starts_with('F'));
            assert!(strsim::levenshtein(&t, "Francisco") <= 2, "{t}");
        }
        assert_eq!(typo(&mut rng, "Al"), "Al");
    }
}
