//! The check digits and registry rules of national identifiers: US SSN, German tax id, French
//! NIR, Spanish DNI/NIE, Italian fiscal code, Dutch BSN, Polish PESEL, Belgian national number,
//! Swedish personnummer, Finnish HETU, UK National Insurance and NHS numbers; the identifiers
//! that hold a birth date in [`dated`] and the plain tax and insurance numbers in [`plain`].

mod dated;
mod plain;
#[cfg(test)]
mod tests;

pub use dated::{at_svnr, cz_rc, dk_cpr, dk_cpr_mod11, gr_amka, hu_tax_id, no_fnr, ro_cnp};
pub use plain::{au_tfn, ca_sin, ie_pps, it_iva, pt_nif};

use super::checksum::{digit_values, luhn, number};

/// SSNs the SSA voided after they were printed as examples (the Woolworth wallet card's
/// 078-05-1120, the 1990s advertisement's 219-09-9999, 457-55-5462).
const VOIDED_SSNS: &[u64] = &[78_051_120, 219_099_999, 457_555_462];

/// US SSN registry rules: no area 000, 666 or 9xx, no group 00, no serial 0000, none of the
/// voided example numbers.
pub fn us_ssn(d: &[u8]) -> bool {
    let area = number(&d[0..3]);
    d.len() == 9
        && !VOIDED_SSNS.contains(&number(d))
        && area != 0
        && area != 666
        && area < 900
        && number(&d[3..5]) != 0
        && number(&d[5..9]) != 0
}

/// German tax id: no leading zero, one digit repeated two or three times among the first ten,
/// ISO 7064 MOD 11,10 check digit.
pub fn de_tax_id(d: &[u8]) -> bool {
    if d.len() != 11 || d[0] == 0 {
        return false;
    }
    let mut counts = [0u8; 10];
    for &x in &d[..10] {
        counts[usize::from(x)] += 1;
    }
    let repeated = counts.iter().filter(|&&c| c >= 2).count();
    if repeated != 1 || counts.iter().any(|&c| c > 3) {
        return false;
    }
    let mut product = 10u32;
    for &x in &d[..10] {
        let mut sum = (u32::from(x) + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let check = (11 - product) % 10;
    check == u32::from(d[10])
}

/// French NIR (15 digits): sex digit, a plausible month, key = 97 − (first 13 mod 97).
pub fn fr_nir(d: &[u8]) -> bool {
    if d.len() != 15 || !matches!(d[0], 1 | 2 | 3 | 4 | 7 | 8) {
        return false;
    }
    let month = number(&d[3..5]);
    if !((1..=12).contains(&month) || (20..=42).contains(&month) || (50..=99).contains(&month)) {
        return false;
    }
    let key = 97 - number(&d[..13]) % 97;
    key == number(&d[13..15])
}

const DNI_LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";

/// Spanish DNI (`12345678Z`) or NIE (`X1234567L`), upper-case and compact.
pub fn es_dni(id: &[u8]) -> bool {
    if id.len() != 9 {
        return false;
    }
    let (lead, rest) = match id[0] {
        b'X' => (0, &id[1..8]),
        b'Y' => (1, &id[1..8]),
        b'Z' => (2, &id[1..8]),
        _ => (-1, &id[..8]),
    };
    if !rest.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let digits: Vec<u8> = rest.iter().map(|b| b - b'0').collect();
    let mut n = number(&digits);
    if lead >= 0 {
        n += (lead as u64) * 10_000_000;
    }
    DNI_LETTERS[(n % 23) as usize] == id[8]
}

/// Italian codice fiscale check character (odd and even position tables).
pub fn it_fiscal_code(cf: &[u8]) -> bool {
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    if cf.len() != 16
        || !cf
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return false;
    }
    let mut sum = 0u32;
    for (i, &c) in cf[..15].iter().enumerate() {
        let index = if c.is_ascii_digit() {
            c - b'0'
        } else {
            c - b'A'
        };
        sum += if i % 2 == 0 {
            ODD[usize::from(index)]
        } else {
            u32::from(index)
        };
    }
    cf[15].is_ascii_uppercase() && u32::from(cf[15] - b'A') == sum % 26
}

/// Dutch BSN: the eleven test.
pub fn nl_bsn(d: &[u8]) -> bool {
    if d.len() != 9 || d.iter().all(|&x| x == 0) {
        return false;
    }
    let mut sum: i64 = 0;
    for (i, &x) in d[..8].iter().enumerate() {
        sum += i64::from(x) * (9 - i as i64);
    }
    sum -= i64::from(d[8]);
    sum % 11 == 0
}

fn valid_day(month: u64, day: u64) -> bool {
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// Whether `day`.`month`.`year` is a day of the Gregorian calendar.
fn valid_date(year: u64, month: u64, day: u64) -> bool {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// `Σ dᵢ·wᵢ` over the digits and weights side by side.
fn weighted(d: &[u8], weights: &[u32]) -> u32 {
    d.iter().zip(weights).map(|(&x, &w)| u32::from(x) * w).sum()
}

/// Polish PESEL: encoded birth date and weighted check digit.
pub fn pl_pesel(d: &[u8]) -> bool {
    if d.len() != 11 {
        return false;
    }
    let month = number(&d[2..4]) % 20;
    if !valid_day(month, number(&d[4..6])) {
        return false;
    }
    const WEIGHTS: [u32; 10] = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
    let sum: u32 = d[..10]
        .iter()
        .zip(WEIGHTS)
        .map(|(&x, w)| u32::from(x) * w)
        .sum();
    (10 - sum % 10) % 10 == u32::from(d[10])
}

/// Belgian national register number: birth date and mod-97 check (with the 2000s rule).
pub fn be_national_number(d: &[u8]) -> bool {
    if d.len() != 11 || number(&d[2..4]) > 12 || number(&d[4..6]) > 31 {
        return false;
    }
    let base = number(&d[..9]);
    let check = number(&d[9..11]);
    97 - base % 97 == check || 97 - (2_000_000_000 + base) % 97 == check
}

/// Swedish personnummer (10 digits: YYMMDDNNNC; coordination numbers add 60 to the day).
pub fn se_personnummer(d: &[u8]) -> bool {
    if d.len() != 10 {
        return false;
    }
    let day = number(&d[4..6]);
    let day = if day > 60 { day - 60 } else { day };
    valid_day(number(&d[2..4]), day) && luhn(d)
}

/// Finnish HETU (`DDMMYYCNNNQ`), upper-case.
pub fn fi_hetu(id: &[u8]) -> bool {
    const CHECK: &[u8; 31] = b"0123456789ABCDEFHJKLMNPRSTUVWXY";
    if id.len() != 11 || !b"+-ABCDEFUVWXY".contains(&id[6]) {
        return false;
    }
    let Some(mut digits) = digit_values(std::str::from_utf8(&id[..6]).unwrap_or("x")) else {
        return false;
    };
    let Some(serial) = digit_values(std::str::from_utf8(&id[7..10]).unwrap_or("x")) else {
        return false;
    };
    // The separator is the century: `+` the 1800s, `-` and `U`–`Y` the 1900s, `A`–`F` the 2000s.
    let century = match id[6] {
        b'+' => 1800,
        b'A'..=b'F' => 2000,
        _ => 1900,
    };
    let year = century + number(&digits[4..6]);
    if !valid_date(year, number(&digits[2..4]), number(&digits[0..2])) {
        return false;
    }
    digits.extend(serial);
    CHECK[(number(&digits) % 31) as usize] == id[10]
}

/// UK National Insurance number (`AB123456C`), compact and upper-case.
pub fn uk_nino(id: &[u8]) -> bool {
    if id.len() != 9
        || !id[..2].iter().all(u8::is_ascii_uppercase)
        || !id[2..8].iter().all(u8::is_ascii_digit)
        || !b"ABCD".contains(&id[8])
    {
        return false;
    }
    let (a, b) = (id[0], id[1]);
    let bad_first = b"DFIQUV".contains(&a);
    let bad_second = b"DFIOQUV".contains(&b);
    let bad_pair = [b"BG", b"GB", b"NK", b"KN", b"TN", b"NT", b"ZZ"].contains(&&[a, b]);
    !(bad_first || bad_second || bad_pair)
}

/// UK NHS number: weighted mod 11.
pub fn uk_nhs(d: &[u8]) -> bool {
    if d.len() != 10 {
        return false;
    }
    let sum: u32 = d[..9]
        .iter()
        .enumerate()
        .map(|(i, &x)| u32::from(x) * (10 - i as u32))
        .sum();
    let check = 11 - sum % 11;
    let check = if check == 11 { 0 } else { check };
    check != 10 && check == u32::from(d[9])
}
