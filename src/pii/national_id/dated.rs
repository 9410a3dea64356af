//! Identifiers that hold their bearer's birth date: Austrian social insurance number, Danish CPR,
//! Norwegian fødselsnummer, Czech and Slovak rodné číslo, Romanian CNP, Greek AMKA and the
//! Hungarian tax id (days since 1867). The date must be a real day, which a random number of the
//! same length seldom holds; each also has its check digit (DK's is optional since 2007).

use super::super::checksum::{luhn, number};
use super::{valid_date, weighted};

/// Austrian social insurance number `NNNC DDMMYY`: no leading zero, the check digit (4th) is the
/// weighted sum mod 11 (a sum of 10 is never issued), a day and a month in the date part
/// (months 13–15 stand for a birth date that is not known or already taken).
pub fn at_svnr(d: &[u8]) -> bool {
    const WEIGHTS: [u32; 10] = [3, 7, 9, 0, 5, 8, 4, 2, 1, 6];
    if d.len() != 10 || d[0] == 0 {
        return false;
    }
    let (day, month) = (number(&d[4..6]), number(&d[6..8]));
    (1..=31).contains(&day)
        && (1..=15).contains(&month)
        && weighted(d, &WEIGHTS) % 11 == u32::from(d[3])
}

/// Danish CPR `DDMMYY-SSSS`: a real date in the century the 7th digit and the year give. The
/// mod-11 check is not issued since 2007, so it is [`dk_cpr_mod11`], separate.
pub fn dk_cpr(d: &[u8]) -> bool {
    if d.len() != 10 {
        return false;
    }
    let (day, month, yy) = (number(&d[0..2]), number(&d[2..4]), number(&d[4..6]));
    let year = match d[6] {
        5..=8 if yy >= 58 => 1800 + yy,
        0..=3 => 1900 + yy,
        4 | 9 if yy >= 37 => 1900 + yy,
        _ => 2000 + yy,
    };
    valid_date(year, month, day)
}

/// The CPR mod-11 check (weights 4,3,2,7,6,5,4,3,2,1) that numbers issued before 2007 pass.
pub fn dk_cpr_mod11(d: &[u8]) -> bool {
    const WEIGHTS: [u32; 10] = [4, 3, 2, 7, 6, 5, 4, 3, 2, 1];
    d.len() == 10 && weighted(d, &WEIGHTS).is_multiple_of(11)
}

/// Norwegian fødselsnummer `DDMMYY IIIKK` (D-numbers add 40 to the day, H-numbers to the month):
/// a real date in the century the individual number gives, and two mod-11 check digits.
pub fn no_fnr(d: &[u8]) -> bool {
    const K1: [u32; 9] = [3, 7, 6, 1, 8, 9, 4, 5, 2];
    const K2: [u32; 10] = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
    if d.len() != 11 {
        return false;
    }
    let check = |sum: u32| (11 - sum % 11) % 11;
    if check(weighted(d, &K1)) != u32::from(d[9]) || check(weighted(d, &K2)) != u32::from(d[10]) {
        return false;
    }
    let (mut day, mut month, yy) = (number(&d[0..2]), number(&d[2..4]), number(&d[4..6]));
    if day >= 80 {
        return false;
    }
    if day > 40 {
        day -= 40;
    }
    if month > 40 {
        month -= 40;
    }
    let individual = number(&d[6..9]);
    let year = match individual {
        0..=499 => 1900 + yy,
        500..=749 if yy >= 54 => 1800 + yy,
        500..=999 if yy < 40 => 2000 + yy,
        900..=999 => 1900 + yy,
        _ => return false,
    };
    valid_date(year, month, day)
}

/// Czech or Slovak rodné číslo `YYMMDD/SSSC`: women's months add 50, and 20 more when a day's
/// serials ran out (from 2004); ten digits are divisible by 11 (or, before 1986, the first nine
/// leave 10 and the check is 0). Nine digits (no check) were issued only before 1954.
pub fn cz_rc(d: &[u8]) -> bool {
    if !matches!(d.len(), 9 | 10) {
        return false;
    }
    let (yy, coded, day) = (number(&d[0..2]), number(&d[2..4]), number(&d[4..6]));
    let month = match coded {
        1..=12 => coded,
        21..=32 => coded - 20,
        51..=62 => coded - 50,
        71..=82 => coded - 70,
        _ => return false,
    };
    if d.len() == 9 {
        // Nine digits (no check digit) were issued until 1953; read as python-stdnum reads
        // them, years 80–99 are the 1880s and 1890s.
        return yy < 54 && valid_date(1900 + yy, month, day)
            || yy >= 80 && valid_date(1800 + yy, month, day);
    }
    let year = if yy < 54 { 2000 + yy } else { 1900 + yy };
    valid_date(year, month, day) && number(&d[..9]) % 11 % 10 == u64::from(d[9])
}

/// County codes of the CNP: the counties, Bucharest and its sectors (7 and 8 abolished),
/// Călărași, Giurgiu, and the codes for residents and foreigners.
const RO_COUNTIES: &[u64] = &[47, 48, 51, 52, 70, 80, 81, 82, 83];

/// Romanian CNP `SYYMMDDJJNNNC`: sex and century digit, a real date, a county code, and the
/// weighted check (279146358279, mod 11, 10 read as 1).
pub fn ro_cnp(d: &[u8]) -> bool {
    const WEIGHTS: [u32; 12] = [2, 7, 9, 1, 4, 6, 3, 5, 8, 2, 7, 9];
    if d.len() != 13 || d[0] == 0 {
        return false;
    }
    let century = match d[0] {
        3 | 4 => 1800,
        5 | 6 => 2000,
        _ => 1900,
    };
    let year = century + number(&d[1..3]);
    let county = number(&d[7..9]);
    let check = weighted(d, &WEIGHTS) % 11;
    let check = if check == 10 { 1 } else { check };
    valid_date(year, number(&d[3..5]), number(&d[5..7]))
        && ((1..=46).contains(&county) || RO_COUNTIES.contains(&county))
        && check == u32::from(d[12])
}

/// Greek AMKA `DDMMYYNNNNC`: a real date (19YY or 20YY) and a Luhn check digit.
pub fn gr_amka(d: &[u8]) -> bool {
    if d.len() != 11 {
        return false;
    }
    let (day, month, yy) = (number(&d[0..2]), number(&d[2..4]), number(&d[4..6]));
    (valid_date(1900 + yy, month, day) || valid_date(2000 + yy, month, day)) && luhn(d)
}

/// Hungarian tax id (adóazonosító jel) `8DDDDDNNNC`: an 8, the birth date as days since
/// 1867-01-01, a serial, and the check: Σ dᵢ·i over the first nine, mod 11 (10 never issued).
pub fn hu_tax_id(d: &[u8]) -> bool {
    const WEIGHTS: [u32; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    d.len() == 10 && d[0] == 8 && weighted(d, &WEIGHTS) % 11 == u32::from(d[9])
}
