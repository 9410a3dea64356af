//! The words before a number that say it is a phone number, or some other identifier (an
//! order, an invoice, a national id): the nearer one wins.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind};

/// Words that say a number nearby is a phone number, read where they begin a word (`tel` in
/// `Telefon`, `téléphone`, `telefoon`): the nouns and the verbs for calling of the EU's
/// languages and English.
const PHONE_CONTEXT: &[&str] = &[
    "phone",
    "tel",
    "tél",
    "call",
    "mobil",
    "móvil",
    "movil",
    "cell",
    "handy",
    "portable",
    "gsm",
    "fax",
    "contact",
    "reach",
    "ring",
    "dial",
    "hotline",
    "whatsapp",
    "sms",
    "téléphone",
    "teléfono",
    "telefono",
    "puhelin",
    "tlf",
    "tfn",
    // French, Spanish, Portuguese, Italian: call (me), reach.
    "appel",
    "joindre",
    "llam",
    "llám",
    "celular",
    "ligue-me",
    "ligue para",
    "ligar",
    "chiam",
    // German, Dutch: call, reachable, extension.
    "ruf",
    "anruf",
    "erreichbar",
    "durchwahl",
    "bellen",
    "mobiel",
    // Polish, Czech, Slovak, Hungarian, Romanian: call (me), mobile.
    "zadzwo",
    "dzwo",
    "komórk",
    "komork",
    "zavolej",
    "zavolaj",
    "volejte",
    "hívj",
    "hivj",
    "sunați",
    "sunati",
    "sună",
    // Croatian, Slovenian, Baltic, Finnish, Estonian, Maltese, Irish: call (me), phone.
    "nazov",
    "poklič",
    "poklic",
    "skambin",
    "paskambin",
    "zvani",
    "tālr",
    "talr",
    "soita",
    "helista",
    "ċempel",
    "cempel",
    "guthán",
    "guthan",
    // Greek and Bulgarian, in both cases (the automaton folds ASCII only).
    "τηλ",
    "Τηλ",
    "ΤΗΛ",
    "κινητ",
    "Κινητ",
    "καλέστε",
    "Καλέστε",
    "тел",
    "Тел",
    "ТЕЛ",
    "обад",
    "Обад",
];

/// Phone words too short to be read where they only begin a word (`bel` is not `Belgium`).
const PHONE_WORDS: &[&str] = &["bel", "puh", "mob"];

/// Words that say a number nearby is some other identifier.
const OTHER_CONTEXT: &[&str] = &[
    "ssn",
    "social security",
    "insurance",
    "tax",
    "order",
    "invoice",
    "inv",
    "tracking",
    "ref",
    "reference",
    "ticket",
    "isbn",
    "issn",
    "iban",
    "account",
    "id",
    "ids",
    "acct",
    "zip",
    "postcode",
    "version",
    "serial",
    "sku",
    "bestellung",
    "bestellnummer",
    "rechnung",
    "commande",
    "facture",
    "pedido",
    "factura",
    "ordine",
    "fattura",
    "zamówieni",
    "faktura",
    "auftrag",
    "kundennummer",
    "sendungsnummer",
    "barcode",
    "ean",
    "gtin",
    "upc",
    "imei",
];

/// Every context word, phone words first, in one automaton: the 48 bytes before a candidate are
/// read once, not once a word.
struct ContextWords {
    automaton: AhoCorasick,
    /// How many of the patterns (the first ones) say "phone".
    phone_words: usize,
    /// How many of those (the first ones) count where they only begin a word.
    phone_prefixes: usize,
}

static CONTEXT_WORDS: LazyLock<Option<ContextWords>> = LazyLock::new(|| {
    let others = super::ids::ID_WORDS
        .iter()
        .flat_map(|words| words.iter())
        .chain(OTHER_CONTEXT);
    let words: Vec<&str> = PHONE_CONTEXT
        .iter()
        .chain(PHONE_WORDS)
        .copied()
        .chain(others.copied())
        .collect();
    // A full DFA: its overlapping walk over the 48 bytes before each number was a tenth of the
    // scan of dense text as the default (contiguous NFA) automaton.
    let automaton = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .kind(Some(AhoCorasickKind::DFA))
        .build(&words)
        .ok()?;
    Some(ContextWords {
        automaton,
        phone_words: PHONE_CONTEXT.len() + PHONE_WORDS.len(),
        phone_prefixes: PHONE_CONTEXT.len(),
    })
});

/// Whether the words before `start` call the number a phone (`Some(true)`), some other
/// identifier (`Some(false)`), or say nothing: the nearer word wins. A word counts where it
/// begins one (`tel` in `Telefon`, not in `hotel`); an identifier's word of four letters or fewer
/// and the short phone words must end one too (`tax` is not `taxi`, `bel` not `Belgium`).
pub(super) fn context(b: &[u8], start: usize) -> Option<bool> {
    let words = CONTEXT_WORDS.as_ref()?;
    let window = &b[start.saturating_sub(48)..start];
    let (mut phone, mut other) = (None, None);
    for hit in words.automaton.find_overlapping_iter(window) {
        let is_phone = hit.pattern().as_usize() < words.phone_words;
        let prefix = hit.pattern().as_usize() < words.phone_prefixes;
        // A byte of a non-ASCII letter before the word continues a word (`тел` in `отель`).
        let begins = hit.start() == 0 || {
            let c = window[hit.start() - 1];
            !c.is_ascii_alphabetic() && c.is_ascii()
        };
        let ends = prefix
            || (hit.len() > 4 && !is_phone)
            || window
                .get(hit.end())
                .is_none_or(|c| !c.is_ascii_alphabetic());
        if begins && ends {
            let last = if is_phone { &mut phone } else { &mut other };
            *last = Some(last.map_or(hit.end(), |e: usize| e.max(hit.end())));
        }
    }
    match (phone, other) {
        (Some(p), Some(o)) => Some(p > o),
        (Some(_), None) => Some(true),
        (None, Some(_)) => Some(false),
        (None, None) => None,
    }
}
