//! National identifiers among the digit clusters. Each kind is taken in the shapes people write
//! it in: a distinctive grouping (`123-45-6789`, `85.07.30-033.28`, `YYMMDD/SSSC`) stands on its
//! own, while digits that only a weak checksum sets apart from an order or phone number need the
//! word that names them just before (`BSN`, `SIN`, `TFN`, `CPR`). A kind named by its word wins
//! over kinds that only fit by shape in the same number.

use super::named::Named;
use super::phone_context::Walk;
use super::{Cluster, id};
use crate::pii::{Finding, Kind};

const SSN_WORDS: &[&str] = &["ssn", "social security"];
const BE_WORDS: &[&str] = &[
    "national number",
    "rijksregister",
    "national",
    "registre",
    "insz",
    "niss",
];
const DE_WORDS: &[&str] = &["steuer", "tax id", "idnr", "identifikationsnummer", "tin"];
const PESEL_WORDS: &[&str] = &["pesel"];
const IT_WORDS: &[&str] = &[
    "codice fiscale",
    "cod. fisc",
    "c.f.",
    "cf",
    "partita iva",
    "p.iva",
    "p. iva",
    "piva",
];
const BSN_WORDS: &[&str] = &["bsn", "burgerservice", "sofi", "sofinummer"];
const SE_WORDS: &[&str] = &["personnummer", "personnr", "pnr", "samordningsnummer"];
const NHS_WORDS: &[&str] = &["nhs"];
const AT_WORDS: &[&str] = &[
    "svnr",
    "sv-nr",
    "sv-nummer",
    "sozialversicherung",
    "versicherungsnummer",
    "social insurance",
];
const DK_WORDS: &[&str] = &["cpr", "personnummer", "personnr"];
const NO_WORDS: &[&str] = &[
    "fødselsnummer",
    "fodselsnummer",
    "fødselsnr",
    "fnr",
    "f.nr",
    "personnummer",
    "d-nummer",
];
const CZ_WORDS: &[&str] = &[
    "rodné číslo",
    "rodne cislo",
    "rodného čísla",
    "rodné č",
    "rč",
    "r.č.",
    "birth number",
];
const RO_WORDS: &[&str] = &["cnp", "cod numeric personal"];
const GR_WORDS: &[&str] = &["amka", "αμκα", "α.μ.κ.α"];
const HU_WORDS: &[&str] = &[
    "adóazonosító",
    "adoazonosito",
    "adóazonosító jel",
    "tax id",
    "tax identification",
];
const PT_WORDS: &[&str] = &[
    "nif",
    "contribuinte",
    "identificação fiscal",
    "identificacao fiscal",
    "número fiscal",
];
const SIN_WORDS: &[&str] = &["sin", "social insurance", "assurance sociale", "nas"];
const TFN_WORDS: &[&str] = &["tfn", "tax file"];
/// The words that name an Irish PPS number (used by the letter-suffixed path).
pub(super) const PPS_WORDS: &[&str] = &["pps", "ppsn", "personal public service"];

/// Every word that names a national identifier: a number one of them names is not a phone.
pub(super) const ID_WORDS: &[&[&str]] = &[
    SSN_WORDS,
    BE_WORDS,
    DE_WORDS,
    PESEL_WORDS,
    IT_WORDS,
    BSN_WORDS,
    SE_WORDS,
    NHS_WORDS,
    AT_WORDS,
    DK_WORDS,
    NO_WORDS,
    CZ_WORDS,
    RO_WORDS,
    GR_WORDS,
    HU_WORDS,
    PT_WORDS,
    SIN_WORDS,
    TFN_WORDS,
    PPS_WORDS,
];

/// One identifier a cluster validates as, and whether its naming word stood before it.
struct Candidate {
    kind: Kind,
    validator: &'static str,
    named: bool,
}

/// Every national identifier the digit groups of `c` validate as; those named by their word,
/// or if none is, those that fit by shape.
pub(super) fn national_ids(
    text: &str,
    c: &Cluster,
    all: &[u8],
    lens: &[usize],
    walk: &mut Walk,
) -> Vec<Finding> {
    let b = text.as_bytes();
    let last = c.count - 1;
    let named = Named::around(b, c.start, c.end);
    let compact = lens.len() == 1;
    // Any one separator repeated (or none): `123 456 789`, `1234.56.782`, `440514-01359`.
    let grouped = c.consistent(text, 0, last, &[" ", "-", "."]);
    let two = |a: usize, z: usize, seps: &[&str]| lens == [a, z] && seps.contains(&c.sep(text, 0));
    let mut found: Vec<Candidate> = Vec::new();
    let mut add = |kind: Kind, validator: &'static str, named: bool| {
        found.push(Candidate {
            kind,
            validator,
            named,
        });
    };
    match all.len() {
        8 if grouped && named.any(TFN_WORDS) && id::au_tfn(all) => {
            add(Kind::AuTfn, "au_tfn_mod11", true);
        }
        9 => {
            let ssn_shape = lens == [3, 2, 4] && c.consistent(text, 0, last, &["-", " ", "."]);
            let n = named.any(SSN_WORDS);
            if (n && compact || ssn_shape) && id::us_ssn(all) {
                add(Kind::UsSsn, "us_ssn_areas", n);
            }
            // `1234.56.789`: how Dutch documents print a BSN.
            let bsn_shape = lens == [4, 2, 3] && c.consistent(text, 0, last, &["."]);
            let n = named.any(BSN_WORDS);
            if (grouped && n || bsn_shape) && id::nl_bsn(all) {
                add(Kind::NlBsn, "nl_bsn_eleven", n);
            }
            if grouped && named.any(SIN_WORDS) && id::ca_sin(all) {
                add(Kind::CaSin, "ca_sin_luhn", true);
            }
            if grouped && named.any(TFN_WORDS) && id::au_tfn(all) {
                add(Kind::AuTfn, "au_tfn_mod11", true);
            }
            if grouped && named.any(PT_WORDS) && id::pt_nif(all) {
                add(Kind::PtNif, "pt_nif_mod11", true);
            }
            // `YYMMDD/SSS`, the slash form of a birth number issued before 1954, stands alone.
            let n = named.any(CZ_WORDS);
            if ((compact || two(6, 3, &[" "])) && n || two(6, 3, &["/"])) && id::cz_rc(all) {
                add(Kind::CzRc, "cz_rc_date", n);
            }
        }
        10 => ten(text, c, all, lens, &named, &mut add),
        11 => eleven(text, c, all, lens, &named, &mut add),
        12 => {
            let n = named.any(SE_WORDS);
            let century = matches!(all[..2], [1, 8] | [1, 9] | [2, 0]);
            // `YYYYMMDDNNNC` whole, as Skatteverket and BankID write it, unless some other
            // identifier's word (an order, an invoice) names it.
            let other = walk.context(b, c.start) == Some(false);
            let shape =
                n && (compact || two(8, 4, &[" "])) || two(8, 4, &["-"]) || compact && !other;
            if shape && century && id::se_personnummer(&all[2..]) {
                add(Kind::SePersonnummer, "se_luhn", n);
            }
        }
        13 if grouped && id::ro_cnp(all) => {
            add(Kind::RoCnp, "ro_cnp_mod11", named.any(RO_WORDS));
        }
        15 if grouped && id::fr_nir(all) => add(Kind::FrNir, "fr_nir_mod97", false),
        _ => {}
    }
    let any_named = found.iter().any(|f| f.named);
    found
        .into_iter()
        .filter(|f| f.named || !any_named)
        .map(|f| Finding::new(f.kind, c.start, c.end, f.validator))
        .collect()
}

type Add<'a> = dyn FnMut(Kind, &'static str, bool) + 'a;

/// Ten digits: Swedish personnummer, Finnish HETU with a digit check, NHS, Austrian SVNR, Danish
/// CPR, Czech/Slovak birth numbers, Hungarian tax ids.
fn ten(text: &str, c: &Cluster, all: &[u8], lens: &[usize], named: &Named, add: &mut Add) {
    let last = c.count - 1;
    let compact = lens.len() == 1;
    let grouped = c.consistent(text, 0, last, &[" ", "-", "."]);
    let two = |a: usize, z: usize, seps: &[&str]| lens == [a, z] && seps.contains(&c.sep(text, 0));
    // `DDMMYY-NNNC` that is a HETU may pass the personnummer's Luhn too; HETU's mod-31 check is
    // the stronger one, so a personnummer needs its word then.
    let hetu = two(6, 4, &["-"]) && id::fi_hetu(&text.as_bytes()[c.start..c.end]);
    if id::se_personnummer(all) {
        let n = named.any(SE_WORDS);
        if n && (compact || two(6, 4, &[" "])) || two(6, 4, &["-"]) && (n || !hetu) {
            add(Kind::SePersonnummer, "se_luhn", n);
        }
    }
    if hetu {
        add(Kind::FiHetu, "fi_hetu_mod31", false);
    }
    let nhs_shape = compact || lens == [3, 3, 4] && c.consistent(text, 0, last, &[" ", "-"]);
    if nhs_shape && named.any(NHS_WORDS) && id::uk_nhs(all) {
        add(Kind::UkNhs, "uk_nhs_mod11", true);
    }
    if id::at_svnr(all) {
        let n = named.any(AT_WORDS);
        if n && (compact || two(4, 6, &["-"])) || two(4, 6, &[" "]) {
            add(Kind::AtSvnr, "at_svnr_mod11", n);
        }
    }
    if id::dk_cpr(all) {
        let n = named.any(DK_WORDS);
        if n && (compact || two(6, 4, &["-", " "])) {
            add(Kind::DkCpr, "dk_cpr_date", true);
        } else if two(6, 4, &["-"]) && id::dk_cpr_mod11(all) {
            add(Kind::DkCpr, "dk_cpr_mod11", false);
        }
    }
    if id::cz_rc(all) {
        let n = named.any(CZ_WORDS);
        if n && (compact || two(6, 4, &[" "])) || two(6, 4, &["/"]) {
            add(Kind::CzRc, "cz_rc_mod11", n);
        }
    }
    if grouped && named.any(HU_WORDS) && id::hu_tax_id(all) {
        add(Kind::HuTaxId, "hu_tax_id_mod11", true);
    }
}

/// Eleven digits: Belgian national number, German tax id, PESEL, Norwegian fødselsnummer, AMKA.
fn eleven(text: &str, c: &Cluster, all: &[u8], lens: &[usize], named: &Named, add: &mut Add) {
    let last = c.count - 1;
    let compact = lens.len() == 1;
    let grouped = c.consistent(text, 0, last, &[" ", "-", "."]);
    let seps_in = |allowed: &[&str]| (0..last).all(|i| allowed.contains(&c.sep(text, i)));
    if id::be_national_number(all) {
        // Two check digits and a date: like the Norwegian number, compact it stands alone.
        let be_shape =
            compact || matches!(lens, [2, 2, 2, 3, 2] | [6, 3, 2]) && seps_in(&[".", "-", " "]);
        let n = named.any(BE_WORDS);
        if n && grouped || be_shape {
            add(Kind::BeNationalNumber, "be_mod97", n);
        }
    }
    // `12 345 678 901`: how the Federal Central Tax Office prints the Steuer-ID.
    let de_shape = lens == [2, 3, 3, 3] && c.consistent(text, 0, last, &[" "]);
    let n = named.any(DE_WORDS);
    if (grouped && n || de_shape) && id::de_tax_id(all) {
        add(Kind::DeTaxId, "de_iso7064", n);
    }
    if grouped && named.any(IT_WORDS) && id::it_iva(all) {
        add(Kind::ItFiscalCode, "it_iva_luhn", true);
    }
    if grouped && named.any(PESEL_WORDS) && id::pl_pesel(all) {
        add(Kind::PlPesel, "pl_pesel_weights", true);
    }
    if id::no_fnr(all) {
        let no_shape = compact || lens == [6, 5] && c.sep(text, 0) == " ";
        let n = named.any(NO_WORDS);
        if n && grouped || no_shape {
            add(Kind::NoFnr, "no_fnr_mod11", n);
        }
    }
    if grouped && named.any(GR_WORDS) && id::gr_amka(all) {
        add(Kind::GrAmka, "gr_amka_luhn", true);
    }
}
