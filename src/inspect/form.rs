//! Form bodies: `application/x-www-form-urlencoded` fields, and every part of a `multipart/*` body
//! (`form-data`, `mixed`, `related`, ..., nested ones too) read as text: in its charset, after its
//! transfer encoding (base64, quoted-printable). A multipart body that does not parse (no boundary,
//! a boundary the body lacks, no closing delimiter), or a part that is not text, cannot be judged:
//! [`parse`] says why, and the request goes on uninspected.

use std::collections::BTreeMap;

use base64::Engine;

use super::charset::{charset_of, decode_text};

/// How deep multipart bodies may nest.
const MAX_DEPTH: usize = 4;

/// Text fields and text contents found in a form body.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FormText {
    /// Field name → value (repeated names joined with `, `).
    pub fields: BTreeMap<String, String>,
    /// Every text value, in order (including text files).
    pub texts: Vec<String>,
    /// Each multipart part's headers (percent-decoded, so `filename*=` reads too), any preamble
    /// or epilogue, and a part in a transfer encoding or another charset as sent (as readers that
    /// ignore those read it): sent along, so scanned, never rewritten.
    pub heads: Vec<String>,
    /// For each of `texts`, the byte range of the body it stands in when it stands there as it
    /// is (no transfer encoding, UTF-8): where redaction may rewrite it.
    pub spans: Vec<Option<(usize, usize)>>,
}

/// Parses `body` according to `content_type`; empty for other types. `Err` says why a multipart
/// body cannot be inspected.
pub fn parse(content_type: &str, body: &[u8]) -> Result<FormText, String> {
    let lower = content_type.to_ascii_lowercase();
    let bare = lower.split(';').next().unwrap_or_default().trim();
    if bare == "application/x-www-form-urlencoded" {
        let fields = crate::policy::fields_of(body);
        let texts = fields.values().cloned().collect();
        return Ok(FormText {
            fields,
            texts,
            ..FormText::default()
        });
    }
    let mut form = FormText::default();
    if bare.starts_with("multipart/") {
        multipart(content_type, body, (0, Some(0)), &mut form)?;
    }
    Ok(form)
}

/// A parameter of a header value (`boundary`, `name`), unquoted; `Err` when it is given twice,
/// since parsers disagree on which one counts.
fn param(value: &str, key: &str) -> Result<Option<String>, String> {
    let mut found = value.split(';').skip(1).filter_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    });
    let first = found.next();
    match found.next() {
        Some(_) => Err(format!("a multipart header names `{key}` twice")),
        None => Ok(first),
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    memchr::memmem::find(haystack.get(from..)?, needle).map(|i| i + from)
}

/// The parts of a multipart `body` at nesting `depth`, which starts at `base` in the request's
/// body when it stands there as it is.
fn multipart(
    content_type: &str,
    body: &[u8],
    (depth, base): (usize, Option<usize>),
    form: &mut FormText,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("multipart bodies nested deeper than {MAX_DEPTH}"));
    }
    let boundary = param(content_type, "boundary")?
        .filter(|b| !b.is_empty())
        .ok_or("a multipart body without a boundary")?;
    let delimiter = format!("--{boundary}");
    let inner = format!("\r\n{delimiter}");
    let first = if body.starts_with(delimiter.as_bytes()) {
        0
    } else {
        find(body, inner.as_bytes(), 0)
            .map(|i| i + 2)
            .ok_or("a multipart body without its boundary")?
    };
    push_text(form, &body[..first.saturating_sub(2)], "the preamble")?;
    let mut at = first + delimiter.len();
    let mut number = 0;
    loop {
        if body[at..].starts_with(b"--") {
            push_text(form, &body[at + 2..], "the epilogue")?;
            return Ok(());
        }
        let line_end = find(body, b"\r\n", at).ok_or("a multipart body cut short")?;
        if body[at..line_end]
            .iter()
            .any(|b| !matches!(b, b' ' | b'\t'))
        {
            return Err("a multipart delimiter followed by other text".into());
        }
        let start = line_end + 2;
        let end = find(body, inner.as_bytes(), start)
            .ok_or("a multipart body without its closing delimiter")?;
        number += 1;
        let at_base = base.map(|b| b + start);
        part(&body[start..end], number, (depth, at_base), form)?;
        at = end + inner.len();
    }
}

fn push_text(form: &mut FormText, bytes: &[u8], what: &str) -> Result<(), String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let text = decode_text(bytes, None, false).map_err(|_| format!("{what} is not text"))?;
    form.heads.push(text);
    Ok(())
}

/// One part: its headers, then its content decoded into text.
fn part(
    bytes: &[u8],
    number: usize,
    (depth, base): (usize, Option<usize>),
    form: &mut FormText,
) -> Result<(), String> {
    let (head, skip) = if bytes.starts_with(b"\r\n") {
        (&b""[..], 2)
    } else {
        let split = find(bytes, b"\r\n\r\n", 0)
            .ok_or_else(|| format!("multipart part {number} has no end of headers"))?;
        (&bytes[..split], split + 4)
    };
    let content = &bytes[skip..];
    let head = decode_text(head, None, false)
        .map_err(|_| format!("the headers of multipart part {number} are not UTF-8"))?;
    // A header continued on the next line (obsolete folding) is one header.
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let header = |name: &str| {
        let mut found = unfolded.lines().filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        });
        let first = found.next();
        match found.next() {
            Some(_) => Err(format!("multipart part {number} names `{name}` twice")),
            None => Ok(first),
        }
    };
    let content_type = header("content-type")?.unwrap_or_default();
    let coding = header("content-transfer-encoding")?
        .unwrap_or_default()
        .to_ascii_lowercase();
    let name = match header("content-disposition")? {
        Some(disposition) => param(&disposition, "name")?,
        None => None,
    };
    form.heads.push(
        percent_encoding::percent_decode_str(&head)
            .decode_utf8_lossy()
            .into_owned(),
    );
    let identity = matches!(coding.as_str(), "" | "7bit" | "8bit" | "binary");
    let base = base.filter(|_| identity).map(|b| b + skip);
    let content = match coding.as_str() {
        _ if identity => content.to_vec(),
        "base64" => {
            let compact: Vec<u8> = content
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|_| format!("multipart part {number} is not valid base64"))?
        }
        "quoted-printable" => quoted_printable(content)
            .ok_or_else(|| format!("multipart part {number} is not valid quoted-printable"))?,
        other => {
            return Err(format!(
                "multipart part {number} has transfer encoding `{other}`, which cannot be inspected"
            ));
        }
    };
    if content_type
        .to_ascii_lowercase()
        .trim_start()
        .starts_with("multipart/")
    {
        return multipart(&content_type, &content, (depth + 1, base), form);
    }
    let charset = charset_of(&content_type)?;
    let text = decode_text(&content, charset.as_deref(), true).map_err(|reason| {
        format!("multipart part {number} is not text ({reason}) and cannot be inspected")
    })?;
    if let Some(name) = name {
        form.fields
            .entry(name)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&text);
            })
            .or_insert_with(|| text.clone());
    }
    let sent = &bytes[skip..];
    if text.as_bytes() != sent {
        // Most form readers ignore a part's transfer encoding and charset: they read it as sent.
        form.heads.push(String::from_utf8_lossy(sent).into_owned());
    }
    let span = base.filter(|_| text.as_bytes() == content.as_slice());
    form.spans.push(span.map(|b| (b, b + content.len())));
    form.texts.push(text);
    Ok(())
}

/// Quoted-printable decoded (RFC 2045): `=XX` escapes and soft line breaks.
fn quoted_printable(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'=' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1..i + 3) {
            Some(b"\r\n") => i += 3,
            _ if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            Some(hex) => {
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            None => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_and_multipart_table() {
        let url = parse(
            "application/x-www-form-urlencoded; charset=utf-8",
            b"amount=5000&note=hi+there",
        )
        .unwrap();
        assert_eq!(url.fields["amount"], "5000");
        assert_eq!(url.fields["note"], "hi there");
        let repeated = parse("application/x-www-form-urlencoded", b"amount=5&amount=5000").unwrap();
        assert_eq!(repeated.fields["amount"], "5, 5000");

        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\nContent-Type: application/octet-stream\r\n\r\n{\"prompt\": \"x\"}\r\n\
                    --XyZ--\r\n";
        let multi = parse("multipart/form-data; boundary=\"XyZ\"", body.as_bytes()).unwrap();
        assert_eq!(multi.fields["purpose"], "fine-tune");
        assert_eq!(multi.fields["file"], "{\"prompt\": \"x\"}");
        assert_eq!(multi.texts.len(), 2);
        assert!(multi.heads[1].contains("a.jsonl"));
        for (text, span) in multi.texts.iter().zip(&multi.spans) {
            let (start, end) = span.expect("stands as it is");
            assert_eq!(&body.as_bytes()[start..end], text.as_bytes());
        }

        assert_eq!(
            parse("application/octet-stream", b"a=b").unwrap(),
            FormText::default()
        );
    }

    #[test]
    fn every_part_is_read_as_text_or_the_body_is_not_inspected() {
        let mixed = "preamble\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\ncaf\u{e9}\r\n\
                     --b\r\nContent-Transfer-Encoding: base64\r\n\r\nbWFpbCBqYW5lQGV4YW1wbGUuY29t\r\n\
                     --b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\njane=40exa=\r\nmple.com\r\n\
                     --b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\ninner\r\n--c--\r\n\
                     --b\r\nContent-Disposition: attachment; filename*=UTF-8''jane%40example.com.txt\r\n\r\nx\r\n\
                     --b--\r\nepilogue";
        let latin1: Vec<u8> = mixed.chars().map(|c| c as u32 as u8).collect();
        let form = parse("multipart/mixed; boundary=b", &latin1).unwrap();
        assert_eq!(
            form.texts,
            [
                "caf\u{e9}",
                "mail jane@example.com",
                "jane@example.com",
                "inner",
                "x"
            ]
        );
        assert!(
            form.heads
                .iter()
                .any(|h| h.contains("jane@example.com.txt"))
        );
        assert!(form.heads.iter().any(|h| h == "preamble"));
        assert!(form.heads.iter().any(|h| h.trim() == "epilogue"));
        let rewritable: Vec<bool> = form.spans.iter().map(Option::is_some).collect();
        assert_eq!(rewritable, [false, false, false, true, true]);
        let (start, end) = form.spans[3].unwrap();
        assert_eq!(&latin1[start..end], b"inner");

        let cases: &[(&str, &[u8], &str)] = &[
            (
                "multipart/form-data",
                b"--b\r\n\r\nx\r\n--b--",
                "without a boundary",
            ),
            (
                "multipart/form-data; boundary=zz",
                b"--b\r\n\r\nx\r\n--b--",
                "without its boundary",
            ),
            (
                "multipart/mixed; boundary=b",
                b"--b\r\n\r\nx",
                "closing delimiter",
            ),
            (
                "multipart/form-data; boundary=b",
                b"--b\r\nContent-Type: image/png\r\n\r\n\x89PNG\xff\r\n--b--",
                "not text",
            ),
            (
                "multipart/form-data; boundary=b",
                b"--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nx\r\n--b--",
                "cannot be inspected",
            ),
            (
                "multipart/form-data; boundary=a; boundary=b",
                b"--b\r\n\r\nx\r\n--b--",
                "`boundary` twice",
            ),
            (
                "multipart/form-data; boundary=b",
                b"--b\r\nContent-Transfer-Encoding: 7bit\r\nContent-Transfer-Encoding: base64\r\n\r\nx\r\n--b--",
                "twice",
            ),
            (
                "multipart/form-data; boundary=b",
                b"--b\r\nContent-Transfer-Encoding:\r\n base64\r\n\r\n!!\r\n--b--",
                "not valid base64",
            ),
        ];
        for (content_type, body, want) in cases {
            let err = parse(content_type, body).unwrap_err();
            assert!(err.contains(want), "{content_type}: {err}");
        }
    }

    #[test]
    fn a_part_in_a_transfer_encoding_or_charset_is_also_read_as_sent() {
        // Most form readers (Go's, Node's busboy) ignore `Content-Transfer-Encoding: base64` and
        // read these digits, which decoded as base64 are valid UTF-8 too.
        let body = b"--b\r\nContent-Disposition: form-data; name=\"card\"\r\n\
                     Content-Transfer-Encoding: base64\r\n\r\n4566155727931792\r\n--b--";
        let form = parse("multipart/form-data; boundary=b", body).unwrap();
        assert_ne!(form.texts, ["4566155727931792"]);
        assert!(
            form.heads.iter().any(|h| h == "4566155727931792"),
            "{:?}",
            form.heads
        );
        // So do readers of a part's charset: these bytes are CJK in UTF-16, an address in UTF-8.
        let body = b"--b\r\nContent-Type: text/plain; charset=utf-16le\r\n\r\n\
                     jane@example.com\r\n--b--";
        let form = parse("multipart/form-data; boundary=b", body).unwrap();
        assert_ne!(form.texts, ["jane@example.com"]);
        assert!(form.heads.iter().any(|h| h == "jane@example.com"));
    }

    #[test]
    fn any_bytes_parse_or_are_refused_without_panicking() {
        let pieces: [&[u8]; 14] = [
            b"--b",
            b"\r\n",
            b"--",
            b"\r\n\r\n",
            b"Content-Type: text/plain",
            b"x",
            b"Content-Transfer-Encoding: base64",
            b"Content-Transfer-Encoding: quoted-printable",
            b"=",
            b"=4",
            b"\xff",
            b"Content-Type: multipart/mixed; boundary=b",
            b" ",
            b"\r\n\t",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            let mut body = Vec::new();
            for _ in 0..16 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                body.extend_from_slice(pieces[(seed % pieces.len() as u64) as usize]);
            }
            let _ = parse("multipart/form-data; boundary=b", &body);
        }
    }
}
