//! The numeric kinds one cluster of digit groups can be: IPv4 addresses, cards, IBANs and
//! national identifiers by their validators, phones by their country codes and lengths.

use super::{Cluster, check, id};
use crate::pii::{Finding, Kind};

const PHONE_CONTEXT: &[&str] = &[
    "phone",
    "tel",
    "call",
    "mobile",
    "cell",
    "fax",
    "contact",
    "reach",
    "whatsapp",
    "sms",
    "telefon",
    "téléphone",
    "teléfono",
    "telefono",
    "puhelin",
    "tlf",
];

/// Whether any of `words` appears in the few bytes before `start` (case-insensitive).
fn context(b: &[u8], start: usize, words: &[&str]) -> bool {
    let from = start.saturating_sub(48);
    let window: Vec<u8> = b[from..start].to_ascii_lowercase();
    words
        .iter()
        .any(|w| window.windows(w.len()).any(|x| x == w.as_bytes()))
}

/// Every numeric kind the digit groups of `c` can be.
pub(super) fn numeric(text: &str, c: &Cluster, out: &mut Vec<Finding>) {
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
    let se_formatted = matches!(lens.as_slice(), [6, 4] | [8, 4]) && c.sep(text, 0) == "-";
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
    let hetu_shape = lens == [6, 4] && c.sep(text, 0) == "-";
    if hetu_shape && id::fi_hetu(&b[c.start..c.end]) {
        push(Kind::FiHetu, "fi_hetu_mod31");
    }
    phone(text, c, &all, &lens, out);
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

/// International numbers by `+`, North American numbers by shape, others by a nearby word.
fn phone(text: &str, c: &Cluster, all: &[u8], lens: &[usize], out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let mut push = |validator: &'static str| {
        out.push(Finding::new(Kind::Phone, c.start, c.end, validator));
    };
    if c.seps().iter().any(|&(s, e)| &b[s..e] == b"/") {
        return;
    }
    if c.plus {
        // The longest run of groups that is a number: text may go on with other digits.
        let longest = (1..c.count)
            .rev()
            .find(|&to| check::international_phone(&c.digits(b, 0, to)));
        if let Some(to) = longest {
            let end = c.groups[to].1;
            out.push(Finding::new(
                Kind::Phone,
                c.start,
                end,
                "e164_country_length",
            ));
        } else if c.count == 1 && check::international_phone(all) {
            push("e164_country_length");
        }
        return;
    }
    let nanp = all.len() == 10 && all[0] >= 2 && all[3] >= 2;
    let paren = b[c.start] == b'(' && c.sep(text, 0).starts_with(')');
    let nanp_shape = lens == [3, 3, 4]
        && (paren && c.sep(text, 1) == "-" || c.consistent(text, 0, 2, &["-", "."]));
    if nanp && nanp_shape {
        push("nanp_shape");
        return;
    }
    let trunk = all[0] == 0 && all.get(1).is_some_and(|d| *d != 0);
    let plausible = (7..=12).contains(&all.len()) && (trunk || nanp);
    if plausible
        && !c.seps().iter().any(|&(s, e)| &b[s..e] == b".")
        && context(b, c.start, PHONE_CONTEXT)
    {
        push("national_with_context");
    }
}
