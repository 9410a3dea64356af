//! Phone detection tables: libphonenumber's example numbers per region, groupings, near misses.

use super::super::phone_plans::matches;
use super::*;
use crate::pii::{Scanner, ScannerConfig};

fn phones_in(scanner: &Scanner, text: &str) -> Vec<String> {
    scanner
        .scan(text)
        .into_iter()
        .filter(|f| f.kind == Kind::Phone)
        .map(|f| text[f.start..f.end].to_string())
        .collect()
}

fn default_scanner() -> Scanner {
    Scanner::new(&ScannerConfig::default()).expect("scanner")
}

/// libphonenumber's own example numbers (fixed line and mobile) of each default region,
/// read from the embedded metadata at test time.
fn examples() -> Vec<(&'static str, PhoneNumber)> {
    let mut out = Vec::new();
    for code in DEFAULT_PHONE_REGIONS {
        let meta = DATABASE.by_id(*code).expect("region");
        let d = meta.descriptors();
        for desc in [d.fixed_line(), d.mobile()].into_iter().flatten() {
            let nsn = desc.example().expect("example");
            let e164 = format!("+{}{nsn}", meta.country_code());
            let number = phonenumber::parse(None, &e164).expect("parses");
            assert!(number.is_valid(), "{code} {e164}");
            out.push((*code, number));
        }
    }
    out
}

#[test]
fn every_default_region_has_a_plan() {
    assert_eq!(
        PhoneRegions::default().codes(),
        DEFAULT_PHONE_REGIONS.to_vec()
    );
    assert!(PhoneRegions::new(&["XX"]).is_err());
    assert!(PhoneRegions::new(&["EU"]).is_err());
    assert_eq!(
        PhoneRegions::new(&["gb", "GB"]).expect("ok").codes(),
        vec!["GB"]
    );
}

#[test]
fn example_numbers_of_every_region_are_found_in_each_form() {
    let scanner = default_scanner();
    let mut failures = Vec::new();
    for (code, number) in examples() {
        let e164 = number.format().mode(Mode::E164).to_string();
        let intl = number.format().mode(Mode::International).to_string();
        let national = number.format().mode(Mode::National).to_string();
        let compact: String = national.chars().filter(char::is_ascii_digit).collect();
        let forms = [
            (format!("reach me at {e164} today"), e164.clone()),
            (format!("reach me at {intl} today"), intl.clone()),
            (format!("office {national}, 3rd floor"), national.clone()),
            (format!("Tel. {national}"), national.clone()),
            (format!("Telefon: {compact}"), compact.clone()),
        ];
        for (text, want) in forms {
            let got = phones_in(&scanner, &text);
            if got != vec![want.clone()] {
                failures.push(format!("{code}: {text:?} gave {got:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn international_numbers_are_found_in_any_grouping() {
    let scanner = default_scanner();
    let cases = [
        "+49 301 234 567 8",
        "+4930 12345678",
        "+33 612345678",
        "+33 6-12-34-56-78",
        "+44 (0)20 7946 0958",
        "+44 7911 123 456",
        "+1 (415) 555-2671",
        "+1.415.555.2671",
        "+81 3 1234 5678",
        "+61 2 9876 5432",
        "+55 11 91234 5678",
        "0049 30 12345678",
        "+39-02-1234-5678",
        "+44-20-7946-0958",
    ];
    let mut failures = Vec::new();
    for number in cases {
        let got = phones_in(&scanner, &format!("x {number} y"));
        if got != vec![number.to_string()] {
            failures.push(format!("{number:?} gave {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn national_numbers_are_found_as_people_write_them() {
    let scanner = default_scanner();
    // (text, the phone it holds or "" for none): numbers from the plans' ranges, UK and US
    // ones from the ranges set aside for drama.
    let cases = [
        ("Büro 030 12345678", "030 12345678"),
        ("Büro 030/12345678", "030/12345678"),
        ("mobil 0151 23456789", "0151 23456789"),
        ("ligne 01 23 45 67 89", "01 23 45 67 89"),
        ("portable 06.12.34.56.78", "06.12.34.56.78"),
        ("ufficio 02 1234 5678", "02 1234 5678"),
        ("cell 333 123 4567", "333 123 4567"),
        ("oficina 912 34 56 78", "912 34 56 78"),
        ("kantoor 020 123 4567", "020 123 4567"),
        ("biuro 512 345 678", "512 345 678"),
        ("kontor 08-123 456 78", "08-123 456 78"),
        ("office 020 7946 0958", "020 7946 0958"),
        ("mobile 07700 900123", "07700 900123"),
        ("desk (212) 555-2671", "(212) 555-2671"),
        ("desk 212-555-2671", "212-555-2671"),
        ("desk 1 212 555 2671", "1 212 555 2671"),
        ("Montréal (514) 555-2671", "(514) 555-2671"),
        ("on 0612345678 tomorrow", "0612345678"),
        ("Telefon 030 1234 5678", "030 1234 5678"),
        ("Tel.: 0301234567", "0301234567"),
        ("ring 0201 1234567", "0201 1234567"),
    ];
    let mut failures = Vec::new();
    for (text, want) in cases {
        let got = phones_in(&scanner, text);
        if got != vec![want.to_string()] {
            failures.push(format!("{text:?} gave {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ambiguous_numbers_need_a_phone_word_and_other_numbers_are_not_phones() {
    let scanner = default_scanner();
    let cases = [
        "on 2024-06-12 at 10:30:45",
        "on 12.06.2024 and 12/06/2024",
        "version 1.2.3 and v10.0.19041.1",
        "order ORD-0612345678 shipped",
        "order 0612345678 shipped",
        "Bestellnummer 030 12345678",
        "tracking 1Z999AA10123456784",
        "invoice INV 2024-00123",
        "ref 2024-0012345",
        "id 0301234567 stored",
        "host 192.168.100.200",
        "card 4111 1111 1111 1111",
        "paid $1234567.89 and 1234567.89 EUR",
        "ZIP 10115 and 94105-1234",
        "ISBN 978-3-16-148410-0",
        "ticket #0612345678",
        "ids 123 456 789 and 1234 5678",
        "serial 0049 1234",
    ];
    let mut failures = Vec::new();
    for text in cases {
        let got = phones_in(&scanner, text);
        if !got.is_empty() {
            failures.push(format!("{text:?} gave {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn only_configured_regions_count_for_national_numbers() {
    let swiss = "Büro 044 668 18 00";
    let us_only = Scanner::new(&ScannerConfig {
        phone_regions: PhoneRegions::new(&["US"]).expect("US"),
        ..ScannerConfig::default()
    })
    .expect("scanner");
    assert!(phones_in(&us_only, swiss).is_empty());
    let scanner = Scanner::new(&ScannerConfig {
        phone_regions: PhoneRegions::new(&["CH"]).expect("CH"),
        ..ScannerConfig::default()
    })
    .expect("scanner");
    assert_eq!(phones_in(&scanner, swiss), vec!["044 668 18 00"]);
    assert_eq!(
        phones_in(&scanner, "+49 30 12345678"),
        vec!["+49 30 12345678"]
    );
}

#[test]
fn a_trunk_prefix_kept_after_the_country_code_is_read_as_libphonenumber_reads_it() {
    let scanner = default_scanner();
    let mut failures = Vec::new();
    for (code, number) in examples() {
        let meta = DATABASE.by_id(code).expect("region");
        let Some(trunk) = meta.national_prefix() else {
            continue;
        };
        let nsn = number.national().value().to_string();
        let written = format!("+{} {trunk}{nsn}", meta.country_code());
        let got = phones_in(&scanner, &format!("x {written} y"));
        if got != vec![written.clone()] {
            failures.push(format!("{code}: {written:?} gave {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn phone_words_of_every_language_and_area_codes_in_parentheses_say_phone() {
    let scanner = default_scanner();
    // Numbers valid in their plans but written in a way other numbers are too: a call verb or
    // a phone noun of the sentence's language, or a `(0…)` area code, says which they are.
    let cases = [
        ("Llámame al 912345678", "912345678"),
        ("Appelez-moi au 0123456789", "0123456789"),
        ("Chiamami allo 0301234567", "0301234567"),
        ("Ruf mich an: 0301234567", "0301234567"),
        ("Bel me op 0201234567", "0201234567"),
        ("Zadzwoń: 221234567", "221234567"),
        ("Hívjon: 0301234567", "0301234567"),
        ("Τηλέφωνο 0301234567", "0301234567"),
        ("Soita 0201234567", "0201234567"),
        ("Büro (0721) 12 34 567", "(0721) 12 34 567"),
        ("Büro (06221) 1234 56", "(06221) 1234 56"),
        ("Hotline 0800 1234567890", "0800 1234567890"),
    ];
    let mut failures = Vec::new();
    for (text, want) in cases {
        let got = phones_in(&scanner, text);
        if got != vec![want.to_string()] {
            failures.push(format!("{text:?} gave {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn numbers_inside_other_identifiers_and_placeholders_are_not_phones() {
    let scanner = Scanner::new(&ScannerConfig::default()).expect("scanner");
    let cases = [
        // An IBAN whose check digits fail (the standard example with one altered).
        "Konto DE88 3704 0044 0532 0130 00",
        "account GB29-NWBK-6016-1331-9268-18",
        // Timestamps, product codes, one digit repeated.
        "last_login=2021-07-14 10:22:31.123456",
        "at 2019-11-05 08:15 UTC",
        "EAN 96385074",
        "barcode 96385074",
        "tel 555 555 555",
        "Belgium 912345678",
    ];
    let mut failures = Vec::new();
    for text in cases {
        let found = scanner.scan(text);
        if !found.is_empty() {
            failures.push(format!("{text:?} gave {found:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn where_the_plan_writes_a_trunk_prefix_a_national_number_needs_it() {
    // Germany's plan formats national numbers as `$NP$FG`: `030 …`, never `30 …`.
    let germany = Scanner::new(&ScannerConfig {
        phone_regions: PhoneRegions::new(&["DE"]).expect("DE"),
        ..ScannerConfig::default()
    })
    .expect("scanner");
    assert_eq!(
        phones_in(&germany, "Büro 030 12345678"),
        vec!["030 12345678"]
    );
    assert!(phones_in(&germany, "Büro 30 12345678").is_empty());
    assert!(phones_in(&germany, "Büro 301 234 5678").is_empty());
}

/// The plan's length mask decides nothing the patterns would not: every plan of every country
/// code, on its example numbers, on them cut, lengthened and changed, and on random digits.
#[test]
fn the_length_mask_agrees_with_the_patterns() {
    let mut rng = crate::pii::test_rng::Rng(0x9E37_79B9_7F4A_7C15);
    let mut next = || rng.next();
    let (mut asked, mut valid) = (0, 0);
    for code in 1..=999u16 {
        for meta in DATABASE.by_code(&code).unwrap_or_default() {
            let plan = Plan::of(meta).expect("plan");
            let d = meta.descriptors();
            let examples: Vec<&str> = [d.fixed_line(), d.mobile(), d.toll_free(), d.voip()]
                .into_iter()
                .flatten()
                .filter_map(|desc| desc.example())
                .collect();
            let mut numbers: Vec<String> = Vec::new();
            for example in &examples {
                numbers.push(example.to_string());
                numbers.push(example[..example.len() - 1].to_string());
                numbers.push(format!("{example}{}", next() % 10));
                let mut changed = example.as_bytes().to_vec();
                let at = next() % changed.len();
                changed[at] = b'0' + (next() % 10) as u8;
                numbers.push(String::from_utf8(changed).expect("digits"));
            }
            for _ in 0..40 {
                let len = 1 + next() % 20;
                numbers.push(
                    (0..len)
                        .map(|_| char::from(b'0' + (next() % 10) as u8))
                        .collect(),
                );
            }
            for n in &numbers {
                let want = matches(&plan.general, n) && plan.types.iter().any(|t| matches(t, n));
                assert_eq!(plan.valid(n), want, "{} {n}", meta.id());
                asked += 1;
                valid += usize::from(want);
            }
        }
    }
    assert!(asked > 10_000 && valid > 500, "{asked} {valid}");
}
