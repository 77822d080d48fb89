use std::collections::{BTreeSet, HashMap, HashSet};

use lead_core::{Phone, Region};

use super::*;

const N: usize = 5_000;

fn region(c: Country) -> Region {
    Region::parse(match c {
        Country::Au => "AU",
        Country::Us => "US",
        Country::Gb => "GB",
        Country::Es => "ES",
    })
    .unwrap()
}

/// Optimal string alignment distance (a transposition counts one).
fn osa(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn fold(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|v| {
        v.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    })
}

fn lower(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|v| v.to_lowercase())
}

#[test]
fn deterministic_for_a_seed() {
    let a = generate(3_000, 42);
    assert_eq!(a, generate(3_000, 42));
    assert_ne!(a, generate(3_000, 43));
    assert_eq!(a.len(), 3_000);
    assert_eq!(generate(0, 1).len(), 0);
    assert_eq!(generate(1, 1).len(), 1);
}

#[test]
fn entities_and_true_pairs_are_consistent() {
    let t = generate_traced(N, 7);
    assert_eq!(t.len(), N);
    let mut originals: HashMap<u32, usize> = HashMap::new();
    let mut sizes: HashMap<u32, u64> = HashMap::new();
    for (i, r) in t.iter().enumerate() {
        let o = &t[r.original];
        assert_eq!(o.lead.entity, r.lead.entity);
        assert!(o.kinds.is_empty(), "an original has no corruptions");
        if r.original == i {
            assert!(
                originals.insert(r.lead.entity, i).is_none(),
                "one original per entity"
            );
        } else {
            assert!(!r.kinds.is_empty(), "a duplicate has corruptions");
        }
        *sizes.entry(r.lead.entity).or_default() += 1;
    }
    assert_eq!(
        originals.len(),
        sizes.len(),
        "every entity has its original"
    );
    assert!(sizes.values().all(|&k| k <= 6), "at most 5 duplicates");
    let pairs: u64 = sizes.values().map(|k| k * (k - 1) / 2).sum();
    let leads: Vec<RawLead> = t.iter().map(|r| r.lead.clone()).collect();
    assert_eq!(true_pairs(&leads), pairs);
    let dup_share = 1.0 - sizes.len() as f64 / N as f64;
    assert!(
        (0.18..0.32).contains(&dup_share),
        "duplicate share {dup_share}"
    );
    // Shuffled: duplicates of one entity are rarely next to each other.
    let adjacent = leads
        .windows(2)
        .filter(|w| w[0].entity == w[1].entity)
        .count();
    assert!(adjacent < 20, "{adjacent} adjacent pairs");
}

#[test]
fn emails_are_unique_across_entities() {
    let leads = generate(N, 11);
    let mut owner: HashMap<String, u32> = HashMap::new();
    let mut loose: HashMap<String, u32> = HashMap::new();
    let mut kept_same = 0;
    for l in &leads {
        let e = l.email.to_lowercase();
        if let Some(prev) = owner.insert(e.clone(), l.entity) {
            assert_eq!(prev, l.entity, "{e} shared by two entities");
            kept_same += 1;
        }
        let (local, domain) = e.rsplit_once('@').unwrap();
        let key = email_key(local, domain);
        if let Some(prev) = loose.insert(key.clone(), l.entity) {
            assert_eq!(prev, l.entity, "{key} (dots, tag) shared by two entities");
        }
    }
    assert!(
        kept_same > 100,
        "some duplicates keep their address: {kept_same}"
    );
}

#[test]
fn namesakes_and_shared_companies_occur() {
    let leads = generate(N, 5);
    let mut by_name: HashMap<(String, String), HashSet<u32>> = HashMap::new();
    let mut by_company: HashMap<String, HashSet<u32>> = HashMap::new();
    let mut by_local: HashMap<String, HashSet<u32>> = HashMap::new();
    for l in &leads {
        if let (Some(f), Some(s)) = (&l.first_name, &l.last_name) {
            by_name
                .entry((f.clone(), s.clone()))
                .or_default()
                .insert(l.entity);
        }
        if let Some(c) = &l.company {
            by_company.entry(c.clone()).or_default().insert(l.entity);
        }
        let local = l.email.rsplit_once('@').unwrap().0.to_lowercase();
        by_local.entry(local).or_default().insert(l.entity);
    }
    assert!(by_name.values().any(|e| e.len() > 1), "namesakes");
    assert!(by_company.values().any(|e| e.len() > 5), "shared companies");
    assert!(by_local.values().any(|e| e.len() > 1), "shared local parts");
}

#[test]
fn to_fields_accepts_every_record() {
    let t = generate_traced(N, 3);
    let mut phones = 0;
    for (i, r) in t.iter().enumerate() {
        let f = to_fields(&r.lead).unwrap_or_else(|| panic!("refused: {:?}", r.lead));
        assert_eq!(f.email.as_str(), r.lead.email.trim().to_lowercase());
        if r.original == i && r.lead.phone.is_some() {
            phones += 1;
            assert!(f.phone.is_some(), "original phone not valid: {:?}", r.lead);
        }
    }
    assert!(phones > N / 2);
}

#[test]
fn country_spellings_name_their_region_as_marked() {
    for c in [Country::Au, Country::Us, Country::Gb, Country::Es] {
        for (s, _) in c.spellings() {
            let read = Region::of_country(s);
            assert_eq!(read == Some(region(c)), spelling_names_region(s), "{s}");
        }
    }
}

#[test]
fn every_kind_occurs() {
    let t = generate_traced(N, 9);
    let seen: BTreeSet<Kind> = t.iter().flat_map(|r| r.kinds.iter().copied()).collect();
    let all: BTreeSet<Kind> = KINDS.iter().map(|(k, _)| *k).collect();
    let missing: Vec<_> = all.difference(&seen).collect();
    assert!(missing.is_empty(), "never applied: {missing:?}");
    for (i, r) in t.iter().enumerate() {
        if r.original != i {
            assert_ne!(
                r.lead, t[r.original].lead,
                "a duplicate equals its original"
            );
        }
    }
}

/// Applies each kind alone to many originals and checks what it did.
#[test]
fn each_kind_changes_what_it_says() {
    let mut g = Generator::new(2_000, 99);
    let originals: Vec<Work> = (0..600).map(|e| g.original(e)).collect();
    for (kind, _) in KINDS {
        let mut applied = 0;
        for (e, o) in originals.iter().enumerate() {
            let mut w = o.clone();
            if !g.apply(&mut w, kind, e as u32) {
                continue;
            }
            applied += 1;
            let a = o.render(0);
            let b = w.render(0);
            assert_ne!(a, b, "{kind:?} changed nothing");
            check(kind, o, &a, &b);
        }
        assert!(applied > 10, "{kind:?} applied only {applied} times");
    }
}

fn name_diff(a: &RawLead, b: &RawLead) -> (String, String) {
    if a.first_name != b.first_name {
        (a.first_name.clone().unwrap(), b.first_name.clone().unwrap())
    } else {
        assert_eq!(a.first_name, b.first_name);
        (a.last_name.clone().unwrap(), b.last_name.clone().unwrap())
    }
}

fn check(kind: Kind, o: &Work, a: &RawLead, b: &RawLead) {
    let others_equal = |what: &str| {
        if what != "email" {
            assert_eq!(a.email, b.email, "{kind:?}");
        }
        if what != "phone" {
            assert_eq!(a.phone, b.phone, "{kind:?}");
        }
        if what != "company" {
            assert_eq!(a.company, b.company, "{kind:?}");
        }
        if what != "country" {
            assert_eq!(a.country, b.country, "{kind:?}");
        }
        if what != "names" {
            assert_eq!(
                (&a.first_name, &a.last_name),
                (&b.first_name, &b.last_name),
                "{kind:?}"
            );
        }
    };
    let (ac, bc) = (a.company.clone(), b.company.clone());
    match kind {
        Kind::CompanySuffixDropped => {
            others_equal("company");
            let (ac, bc) = (ac.unwrap(), bc.unwrap());
            assert!(ac.starts_with(&bc) && ac.len() > bc.len(), "{ac} / {bc}");
        }
        Kind::CompanySuffixChanged => {
            others_equal("company");
            let core = o.company_core.clone().unwrap();
            assert!(bc.unwrap().starts_with(&core));
        }
        Kind::CompanyAbbreviated => {
            others_equal("company");
            assert!(bc.unwrap().len() < ac.unwrap().len());
        }
        Kind::CompanyTypo => {
            others_equal("company");
            assert_eq!(osa(&ac.unwrap(), &bc.unwrap()), 1);
        }
        Kind::SwapNames => {
            others_equal("names");
            assert_eq!((&a.first_name, &a.last_name), (&b.last_name, &b.first_name));
        }
        Kind::GivenInitial => {
            others_equal("names");
            let (x, y) = (a.first_name.clone().unwrap(), b.first_name.clone().unwrap());
            assert!(y.trim_end_matches('.').len() == 1 && x.starts_with(&y[..1]));
        }
        Kind::TypoInsert | Kind::TypoDelete | Kind::TypoSubstitute | Kind::TypoTranspose => {
            others_equal("names");
            let (x, y) = name_diff(a, b);
            assert_eq!(osa(&x, &y), 1, "{kind:?} {x} / {y}");
            let (lx, ly) = (x.len() as i64, y.len() as i64);
            match kind {
                Kind::TypoInsert => assert_eq!(ly, lx + 1),
                Kind::TypoDelete => assert_eq!(ly, lx - 1),
                Kind::TypoSubstitute => assert!(lx == ly && osa(&x, &y) == 1),
                _ => {
                    let mut sx: Vec<char> = x.chars().collect();
                    let mut sy: Vec<char> = y.chars().collect();
                    sx.sort_unstable();
                    sy.sort_unstable();
                    assert_eq!(sx, sy, "{x} / {y}");
                }
            }
        }
        Kind::Ocr => {
            others_equal("names");
            let (x, y) = name_diff(a, b);
            assert!((1..=2).contains(&osa(&x, &y)), "{x} / {y}");
        }
        Kind::CaseChange => {
            assert_eq!(lower(&a.first_name), lower(&b.first_name));
            assert_eq!(lower(&a.last_name), lower(&b.last_name));
            assert_eq!(lower(&ac), lower(&bc));
            assert_eq!((&a.email, &a.phone), (&b.email, &b.phone));
        }
        Kind::Punctuation => {
            assert_eq!(fold(&a.first_name), fold(&b.first_name));
            assert_eq!(fold(&a.last_name), fold(&b.last_name));
            // `&` may become `and`.
            let f = |c: &Option<String>| fold(&c.as_ref().map(|c| c.replace('&', "and")));
            assert_eq!(f(&ac), f(&bc));
            assert_eq!((&a.email, &a.phone), (&b.email, &b.phone));
        }
        Kind::DropGiven => {
            others_equal("names");
            assert!(a.first_name.is_some() && b.first_name.is_none());
        }
        Kind::DropSurname => {
            others_equal("names");
            assert!(a.last_name.is_some() && b.last_name.is_none());
        }
        Kind::DropPhone => {
            others_equal("phone");
            assert!(a.phone.is_some() && b.phone.is_none());
        }
        Kind::DropCompany => {
            others_equal("company");
            assert!(ac.is_some() && bc.is_none());
        }
        Kind::DropCountry => {
            others_equal("country");
            assert!(a.country.is_some() && b.country.is_none());
        }
        Kind::CountryRewritten => {
            others_equal("country");
            let b = b.country.clone().unwrap().to_lowercase();
            assert!(
                o.country
                    .spellings()
                    .iter()
                    .any(|(s, _)| s.to_lowercase() == b)
            );
        }
        Kind::EmailNewProvider | Kind::EmailNewLocal | Kind::EmailDots | Kind::EmailTag => {
            others_equal("email");
            let (al, ad) = a.email.rsplit_once('@').unwrap();
            let (bl, bd) = b.email.rsplit_once('@').unwrap();
            match kind {
                Kind::EmailNewProvider => assert!(al == bl && ad != bd),
                Kind::EmailNewLocal => {
                    assert!(al != bl && ad == bd);
                    assert!(bl.chars().any(|c| c.is_ascii_digit()));
                }
                Kind::EmailDots => {
                    assert_eq!(ad, bd);
                    assert_eq!(al.replace('.', ""), bl.replace('.', ""));
                }
                _ => {
                    assert_eq!(ad, bd);
                    assert_eq!(bl.split_once('+').unwrap().0, al);
                }
            }
        }
        Kind::EmailUpper => {
            others_equal("email");
            assert_eq!(a.email.to_lowercase(), b.email.to_lowercase());
        }
        Kind::PhoneTypoDigit | Kind::PhoneTypoSwap => {
            others_equal("phone");
            let (x, y) = (
                digits(&a.phone.clone().unwrap()),
                digits(&b.phone.clone().unwrap()),
            );
            assert_eq!(x.len(), y.len());
            let diff: Vec<usize> = (0..x.len())
                .filter(|&i| x.as_bytes()[i] != y.as_bytes()[i])
                .collect();
            if kind == Kind::PhoneTypoDigit {
                assert_eq!(diff.len(), 1, "{x} / {y}");
            } else {
                assert!(diff.len() == 2 && diff[1] == diff[0] + 1, "{x} / {y}");
            }
        }
        Kind::PhoneInvalid => {
            others_equal("phone");
            let p = b.phone.clone().unwrap();
            assert!(Phone::parse(&p, region(o.country)).is_err(), "{p} is valid");
        }
        Kind::PhoneReformat => {
            others_equal("phone");
            let r = region(o.country);
            let x = Phone::parse(a.phone.as_ref().unwrap(), r);
            let y = Phone::parse(b.phone.as_ref().unwrap(), r);
            assert!(x.is_ok(), "{a:?}");
            assert_eq!(x.ok(), y.ok(), "{:?} / {:?}", a.phone, b.phone);
        }
    }
}

#[test]
fn csv_round_trips() {
    let leads = generate(500, 4);
    let mut buf = Vec::new();
    write_csv(&leads, &mut buf).unwrap();
    let mut r = csv::Reader::from_reader(buf.as_slice());
    assert_eq!(r.headers().unwrap(), CSV_COLUMNS.to_vec());
    for (i, rec) in r.records().enumerate() {
        assert_eq!(rec.unwrap()[0].parse::<usize>().unwrap(), i);
    }
    // Leading and trailing spaces (a corruption) survive the CSV too.
    let back: Vec<RawLead> = read_csv(buf.as_slice())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(back, leads);
}

#[test]
fn read_csv_names_what_is_wrong() {
    let missing = read_csv("id,entity,email\n".as_bytes()).err();
    assert_eq!(missing.as_deref(), Some("no column first_name"));
    let text = "entity,email,first_name,last_name,phone,company,country\n\
                1,a@b.com,,,,,\n\
                x,c@d.com,,,,,\n";
    let rows: Vec<_> = read_csv(text.as_bytes()).unwrap().collect();
    assert_eq!(rows[0].as_ref().map(|l| l.first_name.clone()), Ok(None));
    assert_eq!(
        rows[1].as_ref().err().map(String::as_str),
        Some("row 3: entity is not a number")
    );
}
