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
        ];
        for mac in macs {
            for text in [
                format!("MAC {mac}"),
                format!("({mac}) seen"),
                mac.to_string(),
            ] {
                assert_eq!(found(&text), vec![(Kind::MacAddress, mac.into())], "{text}");
            }
        }
        for text in [
            "id 1234.5678.9012",
            "part 3c4a.920b.71e5.ff",
            "x3c4a.920b.71e5",
            "3C-4A-92-0B-71-E5-00",
        ] {
            assert!(
                found(text).iter().all(|(k, _)| *k != Kind::MacAddress),
                "{text}: {:?}",
                found(text)
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
