//! Text in the charset it declares: a `charset` parameter (UTF-16, UTF-32, Latin-1, Shift_JIS,
//! ... as the WHATWG Encoding Standard names them, UTF-32 besides) or a byte-order mark, which
//! overrides the label. A request body in another charset than UTF-8 is read as UTF-8 text, judged
//! so, and forwarded so, its `Content-Type` saying `charset=utf-8`: what is judged is what leaves.

use encoding_rs::Encoding;

/// The `charset` parameter of a `Content-Type` value, lower-case and unquoted; `Err` when it is
/// given twice, since parsers disagree on which one counts.
pub(super) fn charset_of(content_type: &str) -> Result<Option<String>, String> {
    let mut found = content_type.split(';').skip(1).filter_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    });
    let first = found.next();
    match found.next() {
        Some(_) => Err("the Content-Type names a charset twice".into()),
        None => Ok(first),
    }
}

/// Whether a `Content-Type` (without parameters, lower-case) says the body is text, so a
/// byte-order mark at its start names its charset.
pub(super) fn textual(bare: &str) -> bool {
    bare.is_empty()
        || bare.starts_with("text/")
        || bare.ends_with("/json")
        || bare.ends_with("+json")
        || bare.ends_with("/xml")
        || bare.ends_with("+xml")
        || bare.contains("json-seq")
        || bare.contains("ndjson")
        || bare.contains("jsonl")
        || bare == "application/javascript"
}

/// A UTF-32 byte-order mark (checked before UTF-16's, which begins the little-endian one).
fn utf32_bom(bytes: &[u8]) -> Option<bool> {
    match bytes {
        [0xFF, 0xFE, 0, 0, ..] => Some(true),
        [0, 0, 0xFE, 0xFF, ..] => Some(false),
        _ => None,
    }
}

/// `bytes` decoded as UTF-32 (`little` endian), `None` when they are not.
fn utf32(bytes: &[u8], little: bool) -> Option<String> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    bytes
        .chunks_exact(4)
        .map(|c| {
            let word = [c[0], c[1], c[2], c[3]];
            char::from_u32(match little {
                true => u32::from_le_bytes(word),
                false => u32::from_be_bytes(word),
            })
        })
        .collect()
}

/// `bytes` as text: in the charset of a byte-order mark when one starts them (when `sniff`), else
/// in `charset` (UTF-8 when none). `Err` says why they are not text in it (an unknown charset,
/// bytes not valid in it).
pub(super) fn decode_text(
    bytes: &[u8],
    charset: Option<&str>,
    sniff: bool,
) -> Result<String, String> {
    let invalid = |name: &str| format!("the text is not valid {name}");
    if sniff && let Some(little) = utf32_bom(bytes) {
        return utf32(&bytes[4..], little).ok_or_else(|| invalid("UTF-32"));
    }
    let bom = if sniff {
        Encoding::for_bom(bytes)
    } else {
        None
    };
    let (encoding, skip) = match (bom, charset) {
        (Some((encoding, len)), _) => (encoding, len),
        (None, None) => (encoding_rs::UTF_8, 0),
        (None, Some(label)) => match label {
            "utf-32" | "utf-32le" => return utf32(bytes, true).ok_or_else(|| invalid(label)),
            "utf-32be" => return utf32(bytes, false).ok_or_else(|| invalid(label)),
            _ => match Encoding::for_label(label.as_bytes()) {
                Some(encoding) => (encoding, 0),
                None => return Err(format!("charset `{label}` cannot be inspected")),
            },
        },
    };
    encoding
        .decode_without_bom_handling_and_without_replacement(&bytes[skip..])
        .map(|text| text.into_owned())
        .ok_or_else(|| invalid(encoding.name()))
}

/// The body as UTF-8 text when `content_type` names another charset or a byte-order mark starts
/// it (a textual type), with the `Content-Type` to forward it under; `None` when it is UTF-8
/// already, not declared text, or multipart. A form in another charset has its escapes decoded
/// in it and encoded again as UTF-8. `Err` when it is not valid text in its charset.
pub fn transcode(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Option<(String, String)>, String> {
    let content_type = content_type.unwrap_or_default();
    let bare = super::bare_type(content_type);
    // A multipart body's parts say their own charsets.
    if bare.starts_with("multipart/") {
        return Ok(None);
    }
    let charset = charset_of(content_type)?;
    let utf8 = matches!(
        charset.as_deref(),
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii")
    );
    if bare == "application/x-www-form-urlencoded" {
        return match (utf8, charset.as_deref()) {
            (false, Some(label)) => Ok(Some((form_in_utf8(body, label)?, with_utf8(content_type)))),
            _ => Ok(None),
        };
    }
    let bom = utf32_bom(body).is_some() || Encoding::for_bom(body).is_some();
    if utf8 && !(bom && textual(&bare)) {
        return Ok(None);
    }
    let text = decode_text(body, charset.as_deref(), true)?;
    Ok(Some((text, with_utf8(content_type))))
}

/// A form whose escapes stand for bytes in `charset` (`caf%E9` in Latin-1), its names and values
/// decoded and encoded again as UTF-8 (`caf%C3%A9`).
fn form_in_utf8(body: &[u8], charset: &str) -> Result<String, String> {
    let decode = |part: &[u8]| -> Result<String, String> {
        let spaced: Vec<u8> = part
            .iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect();
        let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
        decode_text(&bytes, Some(charset), false)
    };
    let mut out = form_urlencoded::Serializer::new(String::new());
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let at = pair.iter().position(|b| *b == b'=').unwrap_or(pair.len());
        let value = pair.get(at + 1..).unwrap_or_default();
        out.append_pair(&decode(&pair[..at])?, &decode(value)?);
    }
    Ok(out.finish())
}

/// `content_type` with its charset parameter set to `utf-8` (added when it had none).
fn with_utf8(content_type: &str) -> String {
    let mut parts: Vec<String> = content_type
        .split(';')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .filter(|p| {
            !p.split_once('=')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        })
        .collect();
    if parts.is_empty() {
        parts.push("text/plain".into());
    }
    parts.push("charset=utf-8".into());
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(text: &str, bom: bool) -> Vec<u8> {
        let mut out = if bom { vec![0xFF, 0xFE] } else { Vec::new() };
        out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        out
    }

    fn utf32be(text: &str) -> Vec<u8> {
        let mut out = vec![0, 0, 0xFE, 0xFF];
        out.extend(text.chars().flat_map(|c| (c as u32).to_be_bytes()));
        out
    }

    #[test]
    fn transcoding_table() {
        let text = "mail jane@example.com";
        type Case = (
            Option<&'static str>,
            Vec<u8>,
            Result<Option<&'static str>, &'static str>,
        );
        let cases: Vec<Case> = vec![
            (Some("text/plain"), text.as_bytes().to_vec(), Ok(None)),
            (
                Some("text/plain; charset=utf-8"),
                text.as_bytes().to_vec(),
                Ok(None),
            ),
            (None, text.as_bytes().to_vec(), Ok(None)),
            (
                Some("text/plain; charset=UTF-16LE"),
                utf16le(text, false),
                Ok(Some("text/plain; charset=utf-8")),
            ),
            (
                Some("application/json"),
                utf16le(text, true),
                Ok(Some("application/json; charset=utf-8")),
            ),
            (
                Some("text/plain; charset=utf-8"),
                utf16le(text, true),
                Ok(Some("text/plain; charset=utf-8")),
            ),
            (
                Some("text/plain; charset=\"utf-32\""),
                utf32be(text),
                Ok(Some("text/plain; charset=utf-8")),
            ),
            (
                Some("text/plain; charset=iso-8859-1"),
                b"caf\xe9 jane@example.com".to_vec(),
                Ok(Some("text/plain; charset=utf-8")),
            ),
            (
                Some("application/octet-stream"),
                utf16le(text, true),
                Ok(None),
            ),
            (
                Some("application/x-www-form-urlencoded"),
                b"note=caf%C3%A9".to_vec(),
                Ok(None),
            ),
            (
                Some("text/plain; charset=utf-8; charset=utf-16"),
                text.as_bytes().to_vec(),
                Err("charset twice"),
            ),
            (
                Some("text/plain; charset=utf-7"),
                text.as_bytes().to_vec(),
                Err("cannot be inspected"),
            ),
            (
                Some("text/plain; charset=utf-16be"),
                vec![0xD8, 0x00],
                Err("not valid"),
            ),
        ];
        let forms: [(&str, &[u8], &str); 2] = [
            (
                "shift_jis",
                b"card=%82%53%82%50%82%50%82%50+x",
                "card=%EF%BC%94%EF%BC%91%EF%BC%91%EF%BC%91+x",
            ),
            ("iso-8859-1", b"note=caf%E9&x", "note=caf%C3%A9&x="),
        ];
        for (charset, body, want) in forms {
            let content_type = format!("application/x-www-form-urlencoded; charset={charset}");
            let utf8 = "application/x-www-form-urlencoded; charset=utf-8".to_string();
            let got = transcode(Some(&content_type), body);
            assert_eq!(got, Ok(Some((want.to_string(), utf8))), "{charset}");
        }
        for (content_type, body, want) in cases {
            let got = transcode(content_type, &body);
            match (got, want) {
                (Ok(None), Ok(None)) => {}
                (Ok(Some((decoded, ct))), Ok(Some(want_ct))) => {
                    assert!(
                        decoded.ends_with("jane@example.com"),
                        "{content_type:?}: {decoded:?}"
                    );
                    assert_eq!(ct, want_ct, "{content_type:?}");
                }
                (Err(e), Err(want)) => assert!(e.contains(want), "{content_type:?}: {e}"),
                (got, want) => panic!("{content_type:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
