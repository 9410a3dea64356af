//! The validators that separate a detector from a regex: check digits, per-country lengths and
//! registry rules. Each takes ASCII digits or upper-case letters and answers yes or no.

/// Luhn (payment cards, Swedish personnummer).
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Digit values (`0`–`9`) of an ASCII string, or `None` if it holds anything else.
pub fn digit_values(text: &str) -> Option<Vec<u8>> {
    text.bytes()
        .map(|b| b.is_ascii_digit().then(|| b - b'0'))
        .collect()
}

pub(super) fn number(digits: &[u8]) -> u64 {
    digits.iter().fold(0, |n, d| n * 10 + u64::from(*d))
}

/// IBAN lengths by country (ISO 13616 registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// The IBAN length of a country code, if it issues IBANs.
pub fn iban_length(country: &[u8]) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| c.as_bytes() == country)
        .map(|(_, len)| *len)
}

/// ISO 13616 mod-97 check of a compact, upper-case IBAN.
pub fn iban_mod97(iban: &[u8]) -> bool {
    if iban.len() < 5 || !iban.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let rotated = iban[4..].iter().chain(&iban[..4]);
    let mut rem = 0u32;
    for &c in rotated {
        if c.is_ascii_digit() {
            rem = (rem * 10 + u32::from(c - b'0')) % 97;
        } else {
            rem = (rem * 100 + u32::from(c.to_ascii_uppercase() - b'A') + 10) % 97;
        }
    }
    rem == 1
}

const BASE58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// A legacy Bitcoin address (P2PKH `1…`, P2SH `3…`): base58check with a valid checksum.
pub fn btc_base58(address: &[u8]) -> bool {
    if !(25..=35).contains(&address.len()) {
        return false;
    }
    let mut bytes = [0u8; 25];
    for &c in address {
        let Some(mut carry) = BASE58.iter().position(|&b| b == c).map(|v| v as u32) else {
            return false;
        };
        for byte in bytes.iter_mut().rev() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        if carry != 0 {
            return false;
        }
    }
    let leading_ones = address.iter().take_while(|&&c| c == b'1').count();
    let leading_zeros = bytes.iter().take_while(|&&b| b == 0).count();
    if leading_ones != leading_zeros || !matches!(bytes[0], 0 | 5) {
        return false;
    }
    let first = ring::digest::digest(&ring::digest::SHA256, &bytes[..21]);
    let second = ring::digest::digest(&ring::digest::SHA256, first.as_ref());
    second.as_ref()[..4] == bytes[21..]
}

/// A segwit Bitcoin address (`bc1…`): bech32 or bech32m checksum.
pub fn btc_bech32(address: &[u8]) -> bool {
    const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    const GEN: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    if !(14..=74).contains(&address.len()) || !address.starts_with(b"bc1") {
        return false;
    }
    let mut values: Vec<u32> = vec![3, 3, 0, 2, 3];
    for &c in &address[3..] {
        match CHARSET.iter().position(|&x| x == c) {
            Some(v) => values.push(v as u32),
            None => return false,
        }
    }
    let mut chk: u32 = 1;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ v;
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk == 1 || chk == 0x2bc8_30a3
}

/// Shannon entropy in bits per character: how random a credential looks. The terms are summed
/// in the order of their byte values, as a walk over all 256 counts would sum them (the same
/// value to the last bit), but only the bytes that occur are visited, by a set of them.
pub fn entropy(value: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut seen = [0u64; 4];
    for b in value.bytes() {
        counts[usize::from(b)] += 1;
        seen[usize::from(b >> 6)] |= 1 << (b & 63);
    }
    let len = value.len() as f64;
    let present = seen.into_iter().enumerate().flat_map(|(word, mut bits)| {
        std::iter::from_fn(move || {
            let bit = (bits != 0).then(|| bits.trailing_zeros() as usize)?;
            bits &= bits - 1;
            Some(word * 64 + bit)
        })
    });
    present
        .map(|byte| {
            let p = f64::from(counts[byte]) / len;
            -p * p.log2()
        })
        .sum()
}

/// [`btc_bech32`] on a string.
pub fn btc_bech32_str(address: &str) -> bool {
    // BIP 173: all lower case or all upper case (the form QR codes carry), never mixed.
    let upper = address.bytes().any(|c| c.is_ascii_uppercase());
    let lower = address.bytes().any(|c| c.is_ascii_lowercase());
    match (upper, lower) {
        (true, true) => false,
        (true, false) => btc_bech32(address.to_ascii_lowercase().as_bytes()),
        _ => btc_bech32(address.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::entropy;

    /// The sum over all 256 counts, as `entropy` was written before it visited only the bytes
    /// that occur.
    fn over_all_counts(value: &str) -> f64 {
        let mut counts = [0u32; 256];
        for b in value.bytes() {
            counts[usize::from(b)] += 1;
        }
        let len = value.len() as f64;
        counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = f64::from(c) / len;
                -p * p.log2()
            })
            .sum()
    }

    #[test]
    fn entropy_is_the_sum_over_all_counts_to_the_last_bit() {
        let alphabet: Vec<char> = "aAbz09_-+/=~.Q ~éж€😀\u{7f}\u{80}".chars().collect();
        let mut rng = crate::pii::test_rng::Rng(0x9E37_79B9_7F4A_7C15);
        let mut next = || rng.next();
        for _ in 0..50_000 {
            // A few distinct characters or many, repeated or not.
            let len = next() % 90;
            let distinct = 1 + next() % alphabet.len();
            let value: String = (0..len).map(|_| alphabet[next() % distinct]).collect();
            assert_eq!(
                entropy(&value).to_bits(),
                over_all_counts(&value).to_bits(),
                "{value:?}"
            );
        }
        let all: String = (0..=127u8).map(char::from).collect();
        assert_eq!(entropy(&all).to_bits(), over_all_counts(&all).to_bits());
    }
}
