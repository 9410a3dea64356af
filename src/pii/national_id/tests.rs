//! Validators of the national identifiers on numbers whose check digits the test computes (or a
//! specification's published example), and on the same numbers with one thing wrong.

use super::*;

fn digits(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

/// `prefix` followed by the first `n`-digit suffix `ok` accepts.
pub(crate) fn complete(prefix: &str, n: u32, ok: impl Fn(&[u8]) -> bool) -> String {
    (0..10u32.pow(n))
        .map(|s| format!("{prefix}{s:0width$}", width = n as usize))
        .find(|c| ok(&digits(c)))
        .unwrap_or_else(|| panic!("no check digits complete {prefix}"))
}

/// `s` with its last digit changed.
fn last_digit_off(s: &str) -> Vec<u8> {
    let mut d = digits(s);
    let last = d.len() - 1;
    d[last] = (d[last] + 1) % 10;
    d
}

type Validator = fn(&[u8]) -> bool;

#[test]
fn new_validators_accept_computed_numbers_and_reject_a_wrong_check_digit() {
    let cases: Vec<(&str, Validator, String)> = vec![
        ("ro_cnp", ro_cnp, complete("180010122123", 1, ro_cnp)),
        ("ro_cnp 2000s", ro_cnp, complete("503123140001", 1, ro_cnp)),
        ("no_fnr", no_fnr, complete("010180123", 2, no_fnr)),
        ("no_fnr d-number", no_fnr, complete("410180123", 2, no_fnr)),
        ("cz_rc", cz_rc, complete("790101123", 1, cz_rc)),
        ("cz_rc woman", cz_rc, complete("855215123", 1, cz_rc)),
        ("gr_amka", gr_amka, complete("0101801234", 1, gr_amka)),
        ("hu_tax_id", hu_tax_id, complete("812345678", 1, hu_tax_id)),
        ("pt_nif", pt_nif, "123456789".into()),
        ("ca_sin", ca_sin, complete("12345678", 1, ca_sin)),
        ("au_tfn", au_tfn, "123456782".into()),
        ("at_svnr", at_svnr, "1237010180".into()),
        (
            "dk_cpr mod11",
            dk_cpr_mod11,
            complete("010190123", 1, dk_cpr_mod11),
        ),
    ];
    for (name, valid, number) in cases {
        assert!(valid(&digits(&number)), "{name} {number}");
        assert!(!valid(&last_digit_off(&number)), "{name} off by one");
    }
}

#[test]
fn dates_and_registry_rules_reject_the_impossible() {
    let rejected: Vec<(&str, Validator, String)> = vec![
        // 31 February, month 13, an unknown county, a first digit 0.
        ("ro_cnp date", ro_cnp, complete("180023122123", 1, |_| true)),
        (
            "ro_cnp county",
            ro_cnp,
            complete("180010199123", 1, |_| true),
        ),
        ("no_fnr month", no_fnr, complete("011380123", 2, |_| true)),
        ("no_fnr fh", no_fnr, complete("810180123", 2, |_| true)),
        ("cz_rc month", cz_rc, complete("791301123", 1, |_| true)),
        ("cz_rc 9 digits after 1953", cz_rc, "790101123".into()),
        ("gr_amka date", gr_amka, complete("3102801234", 1, |_| true)),
        ("hu not 8", hu_tax_id, complete("712345678", 1, |_| true)),
        ("pt first digit 0", pt_nif, "023456789".into()),
        (
            "sin first digit 0",
            ca_sin,
            complete("04645428", 1, |_| true),
        ),
        (
            "sin first digit 8",
            ca_sin,
            complete("84645428", 1, |_| true),
        ),
        ("at leading 0", at_svnr, "0237010180".into()),
        (
            "at day 0",
            at_svnr,
            complete("123", 0, |_| true) + "0000180",
        ),
        ("dk 30 February", dk_cpr, "3002901234".into()),
    ];
    for (name, valid, number) in rejected {
        let d = digits(&number);
        // Whatever the check digit, the number is out.
        let any_check = (0..10).any(|x| {
            let mut d = d.clone();
            let last = d.len() - 1;
            d[last] = x;
            valid(&d)
        });
        assert!(!any_check, "{name} {number}");
    }
    assert!(cz_rc(&digits("530101123")), "nine digits before 1954");
    assert!(dk_cpr(&digits("2902004234")), "29 February 2000");
    assert!(!dk_cpr(&digits("2902001234")), "no 29 February 1900");
    assert!(!dk_cpr(&digits("2902014234")), "no 29 February 2001");
}

#[test]
fn pps_letters_follow_the_2013_rule() {
    assert!(ie_pps(b"1234567T"));
    assert!(ie_pps(b"1234567TW"), "old second letter W does not count");
    assert!(ie_pps(b"1234567FA"), "A counts 9 × 1");
    assert!(!ie_pps(b"1234567TA"));
    assert!(!ie_pps(b"1234567U"));
    assert!(!ie_pps(b"1234567TZ"));
    assert!(!ie_pps(b"123456T"));
}
