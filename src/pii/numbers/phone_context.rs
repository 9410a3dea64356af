//! The words before a number that say it is a phone number, or some other identifier (an
//! order, an invoice, a national id): the nearer one wins.

use std::sync::LazyLock;

use aho_corasick::Anchored;
use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;

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

/// How far before a number its context words are read, in bytes.
const WINDOW: usize = 48;

/// Every context word, phone words first, in one automaton, walked once a text ([`Walk`]).
struct ContextWords {
    automaton: DFA,
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
    // A full DFA without a prefilter, stepped a byte at a time by [`Walk`]: every state that is
    // special is a match state (or the dead one, which an unanchored search never enters).
    let automaton = DFA::builder()
        .ascii_case_insensitive(true)
        .prefilter(false)
        .build(&words)
        .ok()?;
    Some(ContextWords {
        automaton,
        phone_words: PHONE_CONTEXT.len() + PHONE_WORDS.len(),
        phone_prefixes: PHONE_CONTEXT.len(),
    })
});

/// One occurrence of a context word in the text, with what decides whether it counts.
#[derive(Debug, Clone, Copy)]
struct Word {
    start: usize,
    end: usize,
    phone: bool,
    /// Whether the byte before it is not a letter (or it starts the text); at the start of a
    /// number's window it begins a word whatever stands before.
    begins: bool,
    /// Whether it ends where it has to (see [`Walk::context`]).
    ends: bool,
}

/// The context words of one text, found by one overlapping walk that goes only as far as the
/// numbers that ask (so text without numbers is never read) and never reads a byte twice while
/// the windows of consecutive numbers overlap: the same occurrences an overlapping search of each
/// window finds, since an occurrence lies within a window whichever walk finds it. Reading each
/// number's 48 bytes afresh was a tenth of the scan of dense text.
pub(super) struct Walk {
    /// The automaton's state after the byte before `at`.
    state: Option<StateID>,
    /// Where the walk goes on.
    at: usize,
    /// Occurrences found that may still fall in a later window, by end.
    words: Vec<Word>,
}

impl Walk {
    /// A walk at the start of a text.
    pub(super) fn new() -> Walk {
        Walk {
            state: None,
            at: 0,
            words: Vec::new(),
        }
    }

    /// Whether the words before `start` call the number a phone (`Some(true)`), some other
    /// identifier (`Some(false)`), or say nothing: the nearer word wins. A word counts where it
    /// begins one (`tel` in `Telefon`, not in `hotel`); an identifier's word of four letters or
    /// fewer and the short phone words must end one too (`tax` is not `taxi`, `bel` not
    /// `Belgium`). The window is the 48 bytes before `start`, a word counting as begun at its
    /// first byte. Numbers are asked about in order of position in one text `b` (asking about an
    /// earlier one starts the walk again).
    pub(super) fn context(&mut self, b: &[u8], start: usize) -> Option<bool> {
        let words = CONTEXT_WORDS.as_ref()?;
        let from = start.saturating_sub(WINDOW);
        self.walk(words, b, from, start);
        let (mut phone, mut other) = (None, None);
        for w in self.words.iter().filter(|w| w.start >= from) {
            if (w.begins || w.start == from) && w.ends {
                let last = if w.phone { &mut phone } else { &mut other };
                *last = Some(last.map_or(w.end, |e: usize| e.max(w.end)));
            }
        }
        match (phone, other) {
            (Some(p), Some(o)) => Some(p > o),
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (None, None) => None,
        }
    }

    /// Walks on to `to`, having read at least from `from`: from where the walk stands when that
    /// is within the window, else afresh from `from` (an occurrence starting before `from` is
    /// in no window to come).
    fn walk(&mut self, words: &ContextWords, b: &[u8], from: usize, to: usize) {
        let automaton = &words.automaton;
        let mut state = match self.state {
            Some(state) if (from..=to).contains(&self.at) => state,
            _ => {
                self.words.clear();
                self.at = from;
                match automaton.start_state(Anchored::No) {
                    Ok(state) => state,
                    Err(_) => return,
                }
            }
        };
        self.words.retain(|w| w.start >= from);
        while self.at < to {
            state = automaton.next_state(Anchored::No, state, b[self.at]);
            self.at += 1;
            if !automaton.is_special(state) || !automaton.is_match(state) {
                continue;
            }
            let end = self.at;
            for i in 0..automaton.match_len(state) {
                let pattern = automaton.match_pattern(state, i);
                let start = end - automaton.pattern_len(pattern);
                let phone = pattern.as_usize() < words.phone_words;
                let prefix = pattern.as_usize() < words.phone_prefixes;
                // A byte of a non-ASCII letter before the word continues a word (`тел` in
                // `отель`).
                let begins = start == 0 || {
                    let c = b[start - 1];
                    !c.is_ascii_alphabetic() && c.is_ascii()
                };
                let ends = prefix
                    || (end - start > 4 && !phone)
                    || b.get(end).is_none_or(|c| !c.is_ascii_alphabetic());
                self.words.push(Word {
                    start,
                    end,
                    phone,
                    begins,
                    ends,
                });
            }
        }
        self.state = Some(state);
    }
}

#[cfg(test)]
#[path = "phone_context_tests.rs"]
mod tests;
