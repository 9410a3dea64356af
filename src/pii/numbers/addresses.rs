//! Hardware and IPv6 addresses: MACs in their text forms (IEEE 802 colon and hyphen groups,
//! Cisco's dotted `0012.3456.789a`) and IPv6 addresses around a `:`.

use super::is_word;
use crate::pii::{Finding, Kind};

/// `00:1A:2B:3C:4D:5E` or with `-`.
fn mac_at(b: &[u8], start: usize) -> Option<usize> {
    let end = start + 17;
    let mac = b.get(start..end)?;
    let sep = mac[2];
    let shaped = (sep == b':' || sep == b'-')
        && mac.iter().enumerate().all(|(i, &c)| {
            if i % 3 == 2 {
                c == sep
            } else {
                c.is_ascii_hexdigit()
            }
        });
    let bounded = start
        .checked_sub(1)
        .is_none_or(|i| !b[i].is_ascii_alphanumeric() && b[i] != sep)
        && b.get(end)
            .is_none_or(|c| !c.is_ascii_alphanumeric() && *c != sep);
    (shaped && bounded).then_some(end)
}

/// Cisco's dotted form `0012.3456.789a`: three groups of four hex digits. One of them must be a
/// letter, since twelve decimal digits in fours are more often some other number.
fn dotted_mac_at(b: &[u8], start: usize) -> Option<usize> {
    let end = start + 14;
    let mac = b.get(start..end)?;
    let shaped = mac.iter().enumerate().all(|(i, &c)| {
        if i % 5 == 4 {
            c == b'.'
        } else {
            c.is_ascii_hexdigit()
        }
    }) && mac.iter().any(u8::is_ascii_alphabetic);
    let joined =
        |c: u8, next: Option<&u8>| c == b'.' && next.is_some_and(u8::is_ascii_alphanumeric);
    let bounded = start.checked_sub(1).is_none_or(|i| {
        !b[i].is_ascii_alphanumeric() && !joined(b[i], i.checked_sub(1).map(|j| &b[j]))
    }) && b
        .get(end)
        .is_none_or(|&c| !c.is_ascii_alphanumeric() && !joined(c, b.get(end + 1)));
    (shaped && bounded).then_some(end)
}

/// The MAC address (colon, hyphen or dotted form) holding the digit at `digit`, which may
/// follow some of its hex letters (`D0-50-…`, `aabb.cc0d.…`): its start and end.
pub(super) fn mac_around(b: &[u8], digit: usize) -> Option<(usize, usize)> {
    if !mac_group(b, digit) {
        return None;
    }
    mac_search(b, digit)
}

/// [`mac_around`] without the group test: the address's start searched at every position behind
/// the digit.
fn mac_search(b: &[u8], digit: usize) -> Option<(usize, usize)> {
    let mut first = digit;
    while first > 0
        && digit - first < 16
        && (b[first - 1].is_ascii_hexdigit() || matches!(b[first - 1], b':' | b'-' | b'.'))
    {
        first -= 1;
    }
    (first..=digit)
        .filter(|&s| b[s].is_ascii_hexdigit())
        .find_map(|s| {
            let end = mac_at(b, s).or_else(|| dotted_mac_at(b, s))?;
            (end > digit).then_some((s, end))
        })
}

/// Whether the hex digits around `digit` can be a group of a MAC address, as they must be for
/// [`mac_around`] to find one: a run of exactly two beside a `:` or `-`, or of exactly four
/// beside a `.`. Every group of the three forms is bounded on each side by a separator or by the
/// address's edge, which [`mac_at`] and [`dotted_mac_at`] require to be no letter or digit, and
/// has a separator on one side at least. Most numbers in prose are none, and the search for an
/// address's start at every position behind them was a twentieth of its scan.
fn mac_group(b: &[u8], digit: usize) -> bool {
    if !b[digit].is_ascii_hexdigit() {
        return false;
    }
    let mut start = digit;
    while start > 0 && digit - start < 4 && b[start - 1].is_ascii_hexdigit() {
        start -= 1;
    }
    let mut end = digit + 1;
    while end < b.len() && end - start <= 4 && b[end].is_ascii_hexdigit() {
        end += 1;
    }
    let beside = |seps: &[u8]| {
        start.checked_sub(1).is_some_and(|i| seps.contains(&b[i]))
            || b.get(end).is_some_and(|c| seps.contains(c))
    };
    match end - start {
        2 => beside(b":-"),
        4 => beside(b"."),
        _ => false,
    }
}

/// A MAC address with no decimal digit (`AA-BB-CC-DD-EE-FF`, `aabb.ccdd.eeff`) whose first
/// separator is `b[at]`: the digit scan never reaches one, and a colon form is read at its `:`.
/// An address with a digit is left to the digit scan, so none is found twice; one touching a
/// `:` to [`colon`], which reads the whole token (an IPv6 address ending in `::aa` followed by
/// `-bb-cc-dd-ee-ff` stays an IPv6 finding, not a MAC covering its tail). Returns where scanning
/// continues.
pub(super) fn lettered_mac(b: &[u8], at: usize, out: &mut Vec<Finding>) -> usize {
    let colon_at = |i: Option<usize>| i.and_then(|i| b.get(i)) == Some(&b':');
    let lettered = |from: usize, to: usize| {
        b[from..to].iter().all(|c| !c.is_ascii_digit())
            && !colon_at(from.checked_sub(1))
            && !colon_at(Some(to))
    };
    let found = match b[at] {
        b'-' => at.checked_sub(2).and_then(|s| Some(s).zip(mac_at(b, s))),
        _ => at
            .checked_sub(4)
            .and_then(|s| Some(s).zip(dotted_mac_at(b, s))),
    };
    match found {
        Some((start, end)) if lettered(start, end) => {
            out.push(Finding::new(Kind::MacAddress, start, end, "mac"));
            end
        }
        _ => at + 1,
    }
}

/// IPv6 addresses and colon MACs around a `:`; returns where scanning continues.
pub(super) fn colon(text: &str, at: usize, out: &mut Vec<Finding>) -> usize {
    let b = text.as_bytes();
    let allowed = |c: u8| c.is_ascii_hexdigit() || c == b':' || c == b'.';
    let mut ws = at;
    while ws > 0 && allowed(b[ws - 1]) && at - ws < 45 {
        ws -= 1;
    }
    let mut we = at;
    while we < b.len() && allowed(b[we]) && we - ws < 45 {
        we += 1;
    }
    while we > at + 1 && matches!(b[we - 1], b'.') {
        we -= 1;
    }
    let bounded =
        ws.checked_sub(1).is_none_or(|i| !is_word(b[i])) && b.get(we).is_none_or(|&c| !is_word(c));
    // Not an address as a whole: a dotted tail after the last colon may be an IPv4 address of
    // its own (`foo2001:db8::10.0.0.1`), read by the digit scan from there.
    let dotted_tail = || {
        let last_colon = text[ws..we].rfind(':').map_or(we, |i| ws + i + 1);
        if text[last_colon..we].contains('.') {
            last_colon
        } else {
            we
        }
    };
    if !bounded {
        return dotted_tail();
    }
    if let Some(end) = mac_at(b, ws).filter(|&end| end == we) {
        out.push(Finding::new(Kind::MacAddress, ws, end, "mac"));
        return we;
    }
    let token = &text[ws..we];
    let colons = token.bytes().filter(|&c| c == b':').count();
    if colons >= 2
        && token.bytes().any(|c| c.is_ascii_digit())
        && token.parse::<std::net::Ipv6Addr>().is_ok()
    {
        out.push(Finding::new(Kind::IpAddress, ws, we, "ipv6"));
        return we;
    }
    dotted_tail()
}

#[cfg(test)]
pub(super) mod tests {
    use crate::pii::{Kind, Scanner, ScannerConfig};

    /// Each finding of the default scanner in `text`: its kind and the text it covers.
    pub(in crate::pii::numbers) fn found(text: &str) -> Vec<(Kind, String)> {
        Scanner::new(&ScannerConfig::default())
            .expect("scanner")
            .scan(text)
            .into_iter()
            .map(|f| (f.kind, text[f.start..f.end].to_string()))
            .collect()
    }

    #[test]
    fn the_group_test_drops_no_address_the_search_would_find() {
        // The search for an address's start at every position behind the digit, as it was.
        let reference = super::mac_search;
        let alphabet = b"0123456789abcdefABCDEFgxZ:-.: -+(_";
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut found = 0;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bits = state;
            let text: Vec<u8> = (0..24)
                .map(|i| {
                    // Mostly the shapes of addresses: hex pairs or fours between separators.
                    let r = (bits >> (i % 16 * 4)) as usize;
                    bits = bits.rotate_left(7) ^ (i as u64);
                    match (i % 3, r % 8) {
                        (2, 0..=5) => b":-.:-."[r % 6],
                        (_, 0..=5) => b"0123456789abcDEF"[r % 16],
                        _ => alphabet[r % alphabet.len()],
                    }
                })
                .collect();
            for digit in (0..text.len()).filter(|&i| text[i].is_ascii_digit() || text[i] == b'+') {
                let want = reference(&text, digit);
                found += usize::from(want.is_some());
                assert_eq!(
                    super::mac_around(&text, digit),
                    want,
                    "{:?}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
        assert!(found > 1_000, "{found}");
    }

    #[test]
    fn macs_are_found_in_every_text_form() {
        // IEEE 802 canonical forms (colon, hyphen; either case) and Cisco's dotted form.
        let macs = [
            "3C-4A-92-0B-71-E5",
            "3c:4a:92:0b:71:e5",
            "E4-5F-01-2A-9B-C7",
            "e4:5f:01:2a:9b:c7",
            "FA-CE-0B-2A-9B-C7",
            "3c4a.920b.71e5",
            "E45F.012A.9BC7",
            "fac0.ffee.1234",
            // No decimal digit at all: reached at the first separator, not by the digit scan.
            "AA-BB-CC-DD-EE-FF",
            "aa-bb-cc-dd-ee-ff",
            "aa:bb:cc:dd:ee:ff",
            "aabb.ccdd.eeff",
            "DEAD.BEEF.CAFE",
        ];
        for mac in macs {
            for text in [
                format!("MAC {mac}"),
                format!("({mac}) seen"),
                mac.to_string(),
                format!("padding ........ ---/// {mac} ........"),
            ] {
                assert_eq!(found(&text), vec![(Kind::MacAddress, mac.into())], "{text}");
            }
        }
        for text in [
            "id 1234.5678.9012",
            "part 3c4a.920b.71e5.ff",
            "x3c4a.920b.71e5",
            "3C-4A-92-0B-71-E5-00",
            "AA-BB-CC-DD-EE-FF-AA",
            "aa-bb-cc-dd-ee and well-known",
            "xaa-bb-cc-dd-ee-ff",
            "aa-bb-cc-dd-ee-ffx",
            "dead.beef.cafe.face",
            "cafe.babe: de.ad.be.ef",
            "aa--bb-cc-dd-ee-ff",
            "..--aa-bb-cc-dd-ee-ff",
        ] {
            assert!(
                found(text).iter().all(|(k, _)| *k != Kind::MacAddress),
                "{text}: {:?}",
                found(text)
            );
        }
    }

    #[test]
    fn a_lettered_mac_touching_a_colon_leaves_the_token_to_the_ipv6_reading() {
        // A MAC covering an IPv6 address's tail would win the overlap and hide the address.
        for (text, ip) in [
            ("host 2001:db8::aa-bb-cc-dd-ee-ff end", "2001:db8::"),
            ("x aa-bb-cc-dd-ee-ff:2001:db8::1 end", "2001:db8::1"),
            ("peer fe80::be-ef-ca-fe-ba-be up", "fe80::"),
        ] {
            let got = found(text);
            assert!(
                got.iter().all(|(k, _)| *k != Kind::MacAddress),
                "{text}: {got:?}"
            );
            assert!(
                got.iter()
                    .any(|(k, v)| *k == Kind::IpAddress && v.contains(ip)),
                "{text}: {got:?}"
            );
        }
    }

    #[test]
    fn ipv4_is_found_in_cidr_notation_and_at_the_end_of_ipv6_text() {
        // RFC 4632 prefixes, RFC 4291 §2.2 forms with an embedded IPv4 address.
        let cases = [
            ("route 10.0.0.0/8 via", "10.0.0.0/8", "10.0.0.0"),
            ("default 0.0.0.0/0.", "0.0.0.0/0", "0.0.0.0"),
            ("net 192.0.2.0/24", "192.0.2.0/24", "192.0.2.0"),
            ("host ab::ffff:192.0.2.7", "", "192.0.2.7"),
            ("peer x2001:db8::198.51.100.4", "", "198.51.100.4"),
        ];
        for (text, _, ip) in cases {
            let got = found(text);
            assert!(
                got.iter()
                    .any(|(k, v)| *k == Kind::IpAddress && v.contains(ip)),
                "{text}: {got:?}"
            );
        }
        assert_eq!(
            found("host ::ffff:192.0.2.7 up"),
            vec![(Kind::IpAddress, "::ffff:192.0.2.7".into())]
        );
        assert!(found("version 1.2.3.4.5").is_empty());
    }
}
