//! The numeric kinds one cluster of digit groups can be: IPv4 addresses, cards, IBANs and
//! national identifiers by their validators, phones by libphonenumber's plans ([`phones`]).

use super::phones::{self, PhoneRegions};
use super::{Cluster, id};
use crate::pii::{Finding, Kind};

/// Whether any of `words` appears in the few bytes before `start` (case-insensitive).
fn context(b: &[u8], start: usize, words: &[&str]) -> bool {
    let from = start.saturating_sub(48);
    let window: Vec<u8> = b[from..start].to_ascii_lowercase();
    words
        .iter()
        .any(|w| window.windows(w.len()).any(|x| x == w.as_bytes()))
}

/// Every numeric kind the digit groups of `c` can be.
pub(super) fn numeric(text: &str, c: &Cluster, regions: &PhoneRegions, out: &mut Vec<Finding>) {
    if c.digits > 40 {
        return;
    }
    let b = text.as_bytes();
    let lens = c.lens();
    let last = c.count - 1;
    let all = c.digits(b, 0, last);
    let (first, end) = (c.start, c.end);
    if !c.plus && ipv4(text, c, out) {
        return;
    }
    let date_like = lens.len() == 3
        && matches!(
            lens.as_slice(),
            [4, 2, 2] | [2, 2, 4] | [2, 2, 2] | [1, 2, 4] | [2, 1, 4]
        )
        && c.consistent(text, 0, last, &["-", ".", "/"]);
    if date_like {
        return;
    }
    let before = out.len();
    let compact = lens.len() == 1;
    let spaced = c.consistent(text, 0, last, &[" "]);
    let mut push = |kind: Kind, validator: &'static str| {
        out.push(Finding::new(kind, first, end, validator));
    };
    let ctx = |words: &[&str]| context(b, c.start, words);
    if lens == [3, 2, 4] && c.consistent(text, 0, last, &["-", " "]) && id::us_ssn(&all)
        || compact && all.len() == 9 && ctx(&["ssn", "social security"]) && id::us_ssn(&all)
    {
        push(Kind::UsSsn, "us_ssn_areas");
    }
    if all.len() == 15 && spaced && id::fr_nir(&all) {
        push(Kind::FrNir, "fr_nir_mod97");
    }
    let be_formatted = lens == [2, 2, 2, 3, 2]
        && [".", ".", "-", "."]
            .iter()
            .enumerate()
            .all(|(i, s)| c.sep(text, i) == *s);
    let be_context = &[
        "national number",
        "rijksregister",
        "national",
        "registre",
        "insz",
        "niss",
    ];
    if all.len() == 11
        && (be_formatted || compact && ctx(be_context))
        && id::be_national_number(&all)
    {
        push(Kind::BeNationalNumber, "be_mod97");
    }
    let de_context = &["steuer", "tax id", "idnr", "identifikationsnummer", "tin"];
    if all.len() == 11 && spaced && ctx(de_context) && id::de_tax_id(&all) {
        push(Kind::DeTaxId, "de_iso7064");
    }
    if all.len() == 11 && compact && ctx(&["pesel"]) && id::pl_pesel(&all) {
        push(Kind::PlPesel, "pl_pesel_weights");
    }
    let bsn_dotted = lens == [4, 2, 3] && c.consistent(text, 0, last, &["."]);
    if all.len() == 9
        && (compact || bsn_dotted)
        && ctx(&["bsn", "burgerservice", "sofi"])
        && id::nl_bsn(&all)
    {
        push(Kind::NlBsn, "nl_bsn_eleven");
    }
    // `DDMMYY-NNNC` is a HETU and may be a personnummer too; HETU's mod-31 check is the
    // stronger one, so a personnummer needs its word then.
    let hetu = lens == [6, 4] && c.sep(text, 0) == "-" && id::fi_hetu(&b[c.start..c.end]);
    let se_word = ctx(&["personnummer"]);
    if hetu && !se_word {
        push(Kind::FiHetu, "fi_hetu_mod31");
    }
    let se_formatted =
        matches!(lens.as_slice(), [6, 4] | [8, 4]) && c.sep(text, 0) == "-" && (!hetu || se_word);
    let se_digits = &all[all.len().saturating_sub(10)..];
    if (se_formatted || compact && matches!(all.len(), 10 | 12) && ctx(&["personnummer"]))
        && id::se_personnummer(se_digits)
    {
        push(Kind::SePersonnummer, "se_luhn");
    }
    let nhs_shape = compact || lens == [3, 3, 4] && c.consistent(text, 0, last, &[" ", "-"]);
    if all.len() == 10 && nhs_shape && ctx(&["nhs"]) && id::uk_nhs(&all) {
        push(Kind::UkNhs, "uk_nhs_mod11");
    }
    phones::phones(text, c, regions, out);
    // A card number hidden in part of a longer identifier that validated whole is a coincidence
    // of Luhn, not a card.
    let whole_identifier = out[before..].iter().any(|f| f.kind != Kind::Phone);
    if !c.plus && !whole_identifier {
        super::cards::cards(text, c, out);
    }
}

/// IPv4 addresses: four dot-joined groups of at most 255, alone or within a longer run of numbers
/// (`10.1.2.3 2024-01-15`). Returns whether the whole cluster is one.
fn ipv4(text: &str, c: &Cluster, out: &mut Vec<Finding>) -> bool {
    if c.count < 4 {
        return false;
    }
    let b = text.as_bytes();
    let dot = |i: usize| c.sep(text, i) == ".";
    for from in 0..=c.count - 4 {
        let bounded = (from == 0 || !dot(from - 1)) && (from + 3 == c.count - 1 || !dot(from + 3));
        let octets = (from..from + 4).all(|i| {
            let (s, e) = c.groups[i];
            e - s <= 3
                && b[s..e]
                    .iter()
                    .fold(0u32, |n, x| n * 10 + u32::from(x - b'0'))
                    <= 255
        });
        if bounded && octets && (from..from + 3).all(dot) {
            out.push(Finding::new(
                Kind::IpAddress,
                c.groups[from].0,
                c.groups[from + 3].1,
                "ipv4",
            ));
            if c.count == 4 {
                return true;
            }
        }
    }
    false
}
