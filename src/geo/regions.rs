//! Who is in the EU, the EEA, and covered by a GDPR adequacy decision, kept in code: geo databases
//! flag the EU only when true and say nothing of adequacy. An unknown country is in none of them.
//!
//! As of 2026-11-25:
//! - EU: the 27 member states.
//! - EEA: the EU plus Iceland, Liechtenstein and Norway.
//! - Adequacy decisions of the European Commission (Art. 45 GDPR): Andorra, Argentina, Canada
//!   (commercial organisations under PIPEDA), Faroe Islands, Guernsey, Israel, Isle of Man, Japan,
//!   Jersey, New Zealand, Republic of Korea, Switzerland, United Kingdom, Uruguay. The United
//!   States' decision (EU-US Data Privacy Framework, 2023) covers only certified organisations, not
//!   the country, so the US is not listed: a rule that trusts a certified recipient names its host.

use std::collections::HashMap;
use std::sync::OnceLock;

/// EU member states (ISO 3166-1 alpha-2).
pub const EU: [&str; 27] = [
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
];

/// EEA members beyond the EU.
pub const EEA_ONLY: [&str; 3] = ["IS", "LI", "NO"];

/// Countries and territories with a GDPR adequacy decision.
pub const ADEQUATE: [&str; 14] = [
    "AD", "AR", "CA", "FO", "GG", "IL", "IM", "JP", "JE", "NZ", "KR", "CH", "GB", "UY",
];

/// Continent codes (as MaxMind writes them) and their countries, for addresses a config table
/// names by country alone.
const CONTINENTS: [(&str, &str); 7] = [
    (
        "AF",
        "AO BF BI BJ BW CD CF CG CI CM CV DJ DZ EG EH ER ET GA GH GM GN GQ GW KE KM LR LS LY MA MG \
         ML MR MU MW MZ NA NE NG RE RW SC SD SH SL SN SO SS ST SZ TD TG TN TZ UG YT ZA ZM ZW",
    ),
    ("AN", "AQ BV GS HM TF"),
    (
        "AS",
        "AE AF AM AZ BD BH BN BT CC CN CX GE HK ID IL IN IO IQ IR JO JP KG KH KP KR KW KZ LA LB \
         LK MM MN MO MV MY NP OM PH PK PS QA SA SG SY TH TJ TL TM TR TW UZ VN YE",
    ),
    (
        "EU",
        "AD AL AT AX BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM IS IT JE \
         LI LT LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM UA VA XK",
    ),
    (
        "NA",
        "AG AI AW BB BL BM BQ BS BZ CA CR CU CW DM DO GD GL GP GT HN HT JM KN KY LC MF MQ MS MX \
         NI PA PM PR SV SX TC TT US VC VG VI",
    ),
    (
        "OC",
        "AS AU CK FJ FM GU KI MH MP NC NF NR NU NZ PF PG PN PW SB TK TO TV UM VU WF WS",
    ),
    ("SA", "AR BO BR CL CO EC FK GF GY PE PY SR UY VE"),
];

/// Whether `country` is an EU member state.
pub fn in_eu(country: &str) -> bool {
    EU.contains(&country)
}

/// Whether `country` is in the EEA (the EU included).
pub fn in_eea(country: &str) -> bool {
    in_eu(country) || EEA_ONLY.contains(&country)
}

/// Whether `country` has a GDPR adequacy decision.
pub fn adequate(country: &str) -> bool {
    ADEQUATE.contains(&country)
}

/// The continent code of `country`, if it is listed.
pub fn continent_of(country: &str) -> Option<&'static str> {
    static BY_COUNTRY: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    BY_COUNTRY
        .get_or_init(|| {
            CONTINENTS
                .iter()
                .flat_map(|(code, countries)| countries.split_whitespace().map(|c| (c, *code)))
                .collect()
        })
        .get(country)
        .copied()
}

/// Whether `country` is a plausible ISO 3166-1 alpha-2 code (two upper-case letters).
pub fn is_country_code(country: &str) -> bool {
    country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase())
}

/// A region an agent's destinations must lie in (`residency:` of an agent), enforced by a deny
/// rule generated from the config. An unknown destination is outside every region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residency {
    /// EU member states only.
    Eu,
    /// The EEA (EU, Iceland, Liechtenstein, Norway).
    Eea,
    /// The EEA and the countries with a GDPR adequacy decision.
    Adequate,
}
