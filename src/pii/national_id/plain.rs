//! Tax and insurance numbers with a check digit but no date: the Portuguese NIF, the Irish PPS
//! number, the Canadian SIN and the Australian TFN. Their digits alone look like any order or
//! phone number, so the scanner takes them only next to the word that names them.

use super::super::checksum::{luhn, number};
use super::weighted;

/// Portuguese NIF: nine digits, a first digit in use (1–3 people, 45 non-residents, 5–9
/// companies, public bodies and others), check = 11 − Σ dᵢ·(9−i) mod 11 (10 and 11 read as 0).
pub fn pt_nif(d: &[u8]) -> bool {
    const WEIGHTS: [u32; 8] = [9, 8, 7, 6, 5, 4, 3, 2];
    if d.len() != 9 || d[0] == 0 || d[0] == 4 && d[1] != 5 {
        return false;
    }
    (11 - weighted(d, &WEIGHTS) % 11) % 11 % 10 == u32::from(d[8])
}

const PPS_LETTERS: &[u8; 23] = b"WABCDEFGHIJKLMNOPQRSTUV";

/// Irish PPS number, upper-case and compact: seven digits, a check letter, and an optional
/// second letter. The check is Σ dᵢ·(8−i), plus 9 × the value of a second letter `A`, `B` or
/// `H` (the 2013 format), mod 23 into `WABC…V`; the older second letters `W`, `T`, `X` do not
/// count.
pub fn ie_pps(id: &[u8]) -> bool {
    const WEIGHTS: [u32; 7] = [8, 7, 6, 5, 4, 3, 2];
    if !matches!(id.len(), 8 | 9) || !id[..7].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let digits: Vec<u8> = id[..7].iter().map(|c| c - b'0').collect();
    let mut sum = weighted(&digits, &WEIGHTS);
    if let Some(&second) = id.get(8) {
        if !b"ABHWTX".contains(&second) {
            return false;
        }
        if let Some(value) = b"ABH"
            .contains(&second)
            .then(|| PPS_LETTERS.iter().position(|&c| c == second))
            .flatten()
        {
            sum += 9 * value as u32;
        }
    }
    PPS_LETTERS[(sum % 23) as usize] == id[7]
}

/// Italian partita IVA, also the codice fiscale of companies and other bodies: eleven digits, a
/// registrant number that is not all zeros, a province office code (001–100, 120, 121, 888,
/// 999), and a Luhn check digit.
pub fn it_iva(d: &[u8]) -> bool {
    if d.len() != 11 {
        return false;
    }
    let office = number(&d[7..10]);
    d[..7].iter().any(|&x| x != 0)
        && ((1..=100).contains(&office) || matches!(office, 120 | 121 | 888 | 999))
        && luhn(d)
}

/// Canadian SIN: nine digits, Luhn, a first digit that is a region (not 0 or 8).
pub fn ca_sin(d: &[u8]) -> bool {
    d.len() == 9 && d[0] != 0 && d[0] != 8 && luhn(d)
}

/// Australian TFN: nine digits with weights 1,4,3,7,5,8,6,9,10, or an older eight-digit one
/// (weights 10,7,8,4,6,3,5,1, or the first eight of the nine-digit weights as some validators
/// have it), the sum divisible by 11.
pub fn au_tfn(d: &[u8]) -> bool {
    const NINE: [u32; 9] = [1, 4, 3, 7, 5, 8, 6, 9, 10];
    const EIGHT: [u32; 8] = [10, 7, 8, 4, 6, 3, 5, 1];
    match d.len() {
        9 => weighted(d, &NINE).is_multiple_of(11),
        8 => {
            number(d) != 0
                && (weighted(d, &EIGHT).is_multiple_of(11)
                    || weighted(d, &NINE[..8]).is_multiple_of(11))
        }
        _ => false,
    }
}
