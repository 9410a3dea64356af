//! National identifiers in the spellings people write them in (spaces, dots, dashes, lower
//! case, `+` for the very old), the new countries' numbers with and without the words that name
//! them, and their near misses. Check digits are computed here; no value is a real person's.

use super::*;

fn digits(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

/// `prefix` followed by the first `n`-digit suffix `ok` accepts.
fn complete(prefix: &str, n: u32, ok: fn(&[u8]) -> bool) -> String {
    (0..10u32.pow(n))
        .map(|s| format!("{prefix}{s:0width$}", width = n as usize))
        .find(|c| ok(&digits(c)))
        .unwrap_or_else(|| panic!("no check digits complete {prefix}"))
}

/// `s` with its last digit changed.
fn off(s: &str) -> String {
    let mut b = s.as_bytes().to_vec();
    let last = b.len() - 1;
    b[last] = b'0' + (b[last] - b'0' + 1) % 10;
    String::from_utf8(b).expect("ascii")
}

fn found(text: &str) -> Vec<(String, String)> {
    Scanner::new(&ScannerConfig::default())
        .expect("scanner")
        .scan(text)
        .into_iter()
        .map(|f| (f.kind.name().to_string(), text[f.start..f.end].to_string()))
        .collect()
}

/// `DDMMYY-SSSS` with the old mod-11 check, in a year a Swedish reading cannot be a day of.
fn cpr() -> String {
    complete("010145123", 1, |d| {
        national_id::dk_cpr(d) && national_id::dk_cpr_mod11(d)
    })
}

#[test]
fn identifiers_are_found_as_people_write_them() {
    let fnr = complete("010180123", 2, national_id::no_fnr);
    let rc = complete("790101123", 1, national_id::cz_rc);
    let cnp = complete("180010122123", 1, national_id::ro_cnp);
    let amka = complete("0101801234", 1, national_id::gr_amka);
    let hu = complete("812345678", 1, national_id::hu_tax_id);
    let sin = complete("12345678", 1, national_id::ca_sin);
    let cpr = cpr();
    let (sin_spaced, sin_dashed) = (
        format!("{} {} {}", &sin[..3], &sin[3..6], &sin[6..]),
        format!("{}-{}-{}", &sin[..3], &sin[3..6], &sin[6..]),
    );
    let cases: Vec<(String, &str, String)> = vec![
        // Existing kinds, other spellings.
        ("DNI 12.345.678-Z".into(), "es_dni", "12.345.678-Z".into()),
        ("DNI 12345678-Z".into(), "es_dni", "12345678-Z".into()),
        ("dni 12345678z".into(), "es_dni", "12345678z".into()),
        ("DNI 12 345 678 Z".into(), "es_dni", "12 345 678 Z".into()),
        ("NIE X-1234567-L".into(), "es_dni", "X-1234567-L".into()),
        ("nie x1234567l".into(), "es_dni", "x1234567l".into()),
        ("NIE X 1234567 L".into(), "es_dni", "X 1234567 L".into()),
        (
            "cf rssmra85t10a562s".into(),
            "it_fiscal_code",
            "rssmra85t10a562s".into(),
        ),
        (
            "ni ab 12 34 56 c ok".into(),
            "uk_nino",
            "ab 12 34 56 c".into(),
        ),
        ("AB 123456 C".into(), "uk_nino", "AB 123456 C".into()),
        ("ab123456c".into(), "uk_nino", "ab123456c".into()),
        ("NINO ab 123456 c".into(), "uk_nino", "ab 123456 c".into()),
        ("BSN 1112.22.333".into(), "nl_bsn", "1112.22.333".into()),
        ("BSN 111 222 333".into(), "nl_bsn", "111 222 333".into()),
        (
            "PESEL 440514 01359".into(),
            "pl_pesel",
            "440514 01359".into(),
        ),
        (
            "nr 850730 033 28".into(),
            "be_national_number",
            "850730 033 28".into(),
        ),
        (
            "nr 85 07 30 033 28".into(),
            "be_national_number",
            "85 07 30 033 28".into(),
        ),
        (
            "Rijksregisternummer 85073003328".into(),
            "be_national_number",
            "85073003328".into(),
        ),
        (
            "pnr 811218+9876".into(),
            "se_personnummer",
            "811218+9876".into(),
        ),
        (
            "pnr 19811218-9876".into(),
            "se_personnummer",
            "19811218-9876".into(),
        ),
        (
            "personnummer 198112189876".into(),
            "se_personnummer",
            "198112189876".into(),
        ),
        (
            "personnummer 811218 9876".into(),
            "se_personnummer",
            "811218 9876".into(),
        ),
        ("hetu 131052-308t".into(), "fi_hetu", "131052-308t".into()),
        ("hetu 131052A308T".into(), "fi_hetu", "131052A308T".into()),
        ("hetu 131052+308T".into(), "fi_hetu", "131052+308T".into()),
        ("NHS 9434765919".into(), "uk_nhs", "9434765919".into()),
        (
            "NHS no 943-476-5919".into(),
            "uk_nhs",
            "943-476-5919".into(),
        ),
        ("SSN 123 45 6789".into(), "us_ssn", "123 45 6789".into()),
        // New kinds.
        ("SVNR 1237 010180".into(), "at_svnr", "1237 010180".into()),
        (
            "versichert unter 1237 010180".into(),
            "at_svnr",
            "1237 010180".into(),
        ),
        (
            "Sozialversicherungsnummer: 1237010180".into(),
            "at_svnr",
            "1237010180".into(),
        ),
        ("NIF 123456789".into(), "pt_nif", "123456789".into()),
        (
            "contribuinte 123 456 789".into(),
            "pt_nif",
            "123 456 789".into(),
        ),
        ("VAT PT123456789".into(), "pt_nif", "PT123456789".into()),
        ("PPS 1234567T".into(), "ie_pps", "1234567T".into()),
        ("PPSN: 1234567FA".into(), "ie_pps", "1234567FA".into()),
        ("my pps no. 1234567t".into(), "ie_pps", "1234567t".into()),
        (
            format!("born {}-{}", &cpr[..6], &cpr[6..]),
            "dk_cpr",
            format!("{}-{}", &cpr[..6], &cpr[6..]),
        ),
        ("CPR: 0101901234".into(), "dk_cpr", "0101901234".into()),
        (
            "personnummer 010190-1234".into(),
            "dk_cpr",
            "010190-1234".into(),
        ),
        (format!("Fødselsnummer: {fnr}"), "no_fnr", fnr.clone()),
        (
            format!("id {} {}", &fnr[..6], &fnr[6..]),
            "no_fnr",
            format!("{} {}", &fnr[..6], &fnr[6..]),
        ),
        (
            format!("nr {}/{}", &rc[..6], &rc[6..]),
            "cz_rc",
            format!("{}/{}", &rc[..6], &rc[6..]),
        ),
        (format!("rodné číslo {rc}"), "cz_rc", rc.clone()),
        ("RČ 530101/123".into(), "cz_rc", "530101/123".into()),
        (format!("CNP {cnp}"), "ro_cnp", cnp.clone()),
        (format!("cod {cnp}."), "ro_cnp", cnp.clone()),
        (format!("ΑΜΚΑ: {amka}"), "gr_amka", amka.clone()),
        (format!("AMKA {amka}"), "gr_amka", amka.clone()),
        (format!("adóazonosító jel: {hu}"), "hu_tax_id", hu.clone()),
        (format!("SIN {sin_spaced}"), "ca_sin", sin_spaced.clone()),
        (
            format!("social insurance number {sin_dashed}"),
            "ca_sin",
            sin_dashed.clone(),
        ),
        (format!("SIN: {sin}"), "ca_sin", sin.clone()),
        ("TFN 123 456 782".into(), "au_tfn", "123 456 782".into()),
        (
            "tax file number: 123456782".into(),
            "au_tfn",
            "123456782".into(),
        ),
    ];
    let mut failures = Vec::new();
    for (text, kind, span) in &cases {
        let got = found(text);
        if got != vec![(kind.to_string(), span.clone())] {
            failures.push(format!("{text:?}: wanted {kind} {span:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn near_misses_of_the_new_kinds_are_not_findings() {
    let fnr = complete("010180123", 2, national_id::no_fnr);
    let cnp = complete("180010122123", 1, national_id::ro_cnp);
    let rc = complete("790101123", 1, national_id::cz_rc);
    let sin = complete("12345678", 1, national_id::ca_sin);
    let amka_bad_date = complete("3102801234", 1, checksum::luhn);
    let cases: Vec<String> = vec![
        // Valid checksums without the word or the grouping that would tell them apart.
        "order number 1237010180 shipped".into(),
        "order 123456782 shipped".into(),
        "invoice 123 456 789 is due".into(),
        format!("ticket {}", &sin),
        format!("since {} {} {}", &sin[..3], &sin[3..6], &sin[6..]),
        "ref 0101901234".into(),
        format!("ref {rc}"),
        "tracking 1234567T".into(),
        // Wrong check digits.
        format!("CNP {}", off(&cnp)),
        format!("fødselsnummer {}", off(&fnr)),
        format!("{}/{}", &rc[..6], off(&rc[6..])),
        "TFN 123 456 783".into(),
        format!("SIN {}", off(&sin)),
        "PPS 1234567U".into(),
        "NIF 123456780".into(),
        "SVNR 1238 010180".into(),
        // Impossible dates.
        "CPR 300290-1234".into(),
        format!("AMKA {amka_bad_date}"),
        "rodné číslo 791301/1234".into(),
        // Timestamps, versions, phones, prices.
        "at 1717682412 and 1717682412000".into(),
        "upgrade to v1.14.99 and 2.3.4-5".into(),
        "the total was 1237.01".into(),
        // A NINO-looking lower-case word pair with unpaired digits.
        "on 123456 a".into(),
    ];
    let mut failures = Vec::new();
    for text in &cases {
        let got = found(text);
        if !got.is_empty() {
            failures.push(format!("{text:?}: {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        found("phone 612 345 678"),
        [("phone".to_string(), "612 345 678".to_string())],
        "a phone, not an identifier"
    );
}

#[test]
fn new_kinds_have_names_labels_and_the_national_id_group() {
    for name in [
        "at_svnr",
        "pt_nif",
        "ie_pps",
        "dk_cpr",
        "no_fnr",
        "cz_rc",
        "ro_cnp",
        "gr_amka",
        "hu_tax_id",
        "ca_sin",
        "au_tfn",
    ] {
        let kind = Kind::builtin(name).expect(name);
        assert_eq!(kind.name(), name);
        assert_eq!(kind.label(), name.to_ascii_uppercase());
        assert!(
            kind.selected_by("national_id") && kind.selected_by("pii"),
            "{name}"
        );
    }
}

/// A HETU `DDMMYY?NNN` completed with its mod-31 check character.
fn hetu(date: &str, sep: char, serial: &str) -> String {
    const CHECK: &[u8; 31] = b"0123456789ABCDEFHJKLMNPRSTUVWXY";
    let n: u64 = format!("{date}{serial}").parse().expect("digits");
    format!(
        "{date}{sep}{serial}{}",
        char::from(CHECK[(n % 31) as usize])
    )
}

#[test]
fn written_forms_of_the_standards_stand_alone() {
    let se = complete("1985061512", 2, |d| national_id::se_personnummer(&d[2..]));
    let bsn = complete("12345678", 1, national_id::nl_bsn);
    let bsn_dotted = format!("{}.{}.{}", &bsn[..4], &bsn[4..6], &bsn[6..]);
    let steuer = complete("8601957428", 1, national_id::de_tax_id);
    let steuer_spaced = format!(
        "{} {} {} {}",
        &steuer[..2],
        &steuer[2..5],
        &steuer[5..8],
        &steuer[8..]
    );
    let rc_old = "480312/123";
    let be = complete("850615123", 2, national_id::be_national_number);
    let ssn_dotted = "123.45.6789";
    let cases = [
        (format!("Siehe {se}."), "se_personnummer", se.clone()),
        (
            format!("BSN-Nummer {bsn_dotted}"),
            "nl_bsn",
            bsn_dotted.clone(),
        ),
        (format!("Nummer {bsn_dotted}"), "nl_bsn", bsn_dotted.clone()),
        (
            format!("Steuer-ID {steuer_spaced}"),
            "de_tax_id",
            steuer_spaced.clone(),
        ),
        (
            format!("ID: {steuer_spaced}"),
            "de_tax_id",
            steuer_spaced.clone(),
        ),
        (format!("ok {rc_old}"), "cz_rc", rc_old.to_string()),
        (format!("n. {be}"), "be_national_number", be.clone()),
        (
            format!("ssn {ssn_dotted}"),
            "us_ssn",
            ssn_dotted.to_string(),
        ),
        (
            format!("{ssn_dotted} today"),
            "us_ssn",
            ssn_dotted.to_string(),
        ),
    ];
    let mut failures = Vec::new();
    for (text, kind, value) in cases {
        let got = found(&text);
        if got != vec![(kind.to_string(), value.clone())] {
            failures.push(format!("{text:?} gave {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Some other identifier's word before a 12-digit number keeps it from being a personnummer.
    assert!(found(&format!("order {se}")).is_empty());
    assert!(found(&format!("ok {}", off(&se))).is_empty());
}

#[test]
fn words_after_a_number_name_it_and_new_spellings_validate() {
    let sin = complete("27138571", 1, national_id::ca_sin);
    let pesel = complete("8506150123", 1, national_id::pl_pesel);
    let iva = complete("1234567001", 1, national_id::it_iva);
    let cases = [
        (format!("{sin} is my SIN"), "ca_sin", sin.clone()),
        (format!("{pesel} to mój PESEL."), "pl_pesel", pesel.clone()),
        (
            format!("Codice fiscale: {iva}"),
            "it_fiscal_code",
            iva.clone(),
        ),
        (format!("P.IVA {iva}"), "it_fiscal_code", iva.clone()),
        // The nine-character PPS form (weights 8…2, the second letter as 9 × its value).
        (
            "Siehe 1234567FA.".to_string(),
            "ie_pps",
            "1234567FA".to_string(),
        ),
        (
            "ok 1234567fa".to_string(),
            "ie_pps",
            "1234567fa".to_string(),
        ),
        // Nine-digit birth numbers of the 1880s and 1890s.
        ("RČ 991231123".to_string(), "cz_rc", "991231123".to_string()),
    ];
    let mut failures = Vec::new();
    for (text, kind, value) in cases {
        let got = found(&text);
        if got != vec![(kind.to_string(), value.clone())] {
            failures.push(format!("{text:?} gave {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A word after the clause ends, or after another number, names nothing here.
    assert!(found(&format!("{sin}. SIN below")).is_empty());
    assert!(found(&format!("{sin} and 12 SINs")).is_empty());
    assert!(found(&format!("P.IVA {}", off(&iva))).is_empty());
    assert!(found("Siehe 1234567FQ.").is_empty());
    assert!(found("RČ 541231123").is_empty());
}

#[test]
fn impossible_dates_and_voided_numbers_are_not_identifiers() {
    // 29 February exists in 1952, not in 1953 nor in 1900; 31 April never.
    assert!(national_id::fi_hetu(hetu("290252", '-', "123").as_bytes()));
    assert!(national_id::fi_hetu(hetu("290200", 'A', "123").as_bytes()));
    for (date, sep) in [("290253", '-'), ("290200", '-'), ("310452", '-')] {
        let id = hetu(date, sep, "123");
        assert!(!national_id::fi_hetu(id.as_bytes()), "{id}");
        assert!(found(&format!("HETU {id}")).is_empty(), "{id}");
    }
    for voided in ["078-05-1120", "219-09-9999", "457-55-5462"] {
        assert!(!national_id::us_ssn(&digits(voided)), "{voided}");
        assert!(found(&format!("my SSN is {voided}")).is_empty(), "{voided}");
    }
    // An SSN named by its word is still written as one: nine digits, or 3-2-4.
    assert!(found("my social security number is 1234-56789").is_empty());
    assert_eq!(
        found("my social security number is 123456789"),
        vec![("us_ssn".to_string(), "123456789".to_string())]
    );
}
