//! Request bodies as rules need them: decoded from gzip, deflate, br and zstd (in the order the
//! `Content-Encoding` header lists), never larger than the inspection limit.

use std::io::Read;

use bytes::Bytes;

/// Why a body cannot be inspected. Such a body is not forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// A content coding we do not decode.
    #[error("content encoding `{0}` cannot be inspected")]
    UnknownEncoding(String),
    /// The bytes are not valid in their declared coding.
    #[error("body is not valid {coding}: {reason}")]
    Corrupt {
        coding: String,
        /// What the decoder said.
        reason: String,
    },
    /// Decoded, the body is larger than the inspection limit.
    #[error("decoded body exceeds the inspection limit of {0} bytes")]
    TooLarge(usize),
}

/// Decodes `raw` according to `content_encoding` (e.g. `gzip`, `br`, `gzip, zstd`), keeping the
/// result within `limit` bytes.
pub fn decode(
    raw: Bytes,
    content_encoding: Option<&str>,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let codings: Vec<String> = content_encoding
        .unwrap_or_default()
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    let mut body = raw;
    for coding in codings.iter().rev() {
        body = match coding.as_str() {
            // Every gzip member and zstd frame is decoded, and zlib must end where the body ends:
            // trailing bytes the proxy did not judge must not reach the upstream.
            "gzip" | "x-gzip" => {
                read_limited(flate2::read::MultiGzDecoder::new(&body[..]), coding, limit)?
            }
            "deflate" => {
                let mut decoder = flate2::read::ZlibDecoder::new(&body[..]);
                let out = read_limited(&mut decoder, coding, limit)?;
                if decoder.total_in() != body.len() as u64 {
                    return Err(corrupt(coding, "trailing data after the deflate stream"));
                }
                out
            }
            "br" => read_limited(
                brotli_decompressor::Decompressor::new(&body[..], 4096),
                coding,
                limit,
            )?,
            "zstd" => zstd_frames(&body, coding, limit)?,
            other => return Err(BodyError::UnknownEncoding(other.to_string())),
        };
    }
    if body.len() > limit {
        return Err(BodyError::TooLarge(limit));
    }
    Ok(body)
}

/// About how many bytes `value` takes in memory: a JSON body is held parsed as long as its
/// request is, in more bytes than it came in (`[0,0,...]` sixteen times as many), so the buffer
/// budget counts these too.
pub fn json_footprint(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    let node = std::mem::size_of::<Value>();
    let member = std::mem::size_of::<String>();
    match value {
        Value::String(s) => node + s.len(),
        Value::Array(items) => node + items.iter().map(json_footprint).sum::<usize>(),
        Value::Object(fields) => {
            let members = fields
                .iter()
                .map(|(k, v)| member + k.len() + json_footprint(v));
            node + members.sum::<usize>()
        }
        _ => node,
    }
}

fn corrupt(coding: &str, reason: &str) -> BodyError {
    BodyError::Corrupt {
        coding: coding.to_string(),
        reason: reason.to_string(),
    }
}

fn zstd_frames(body: &[u8], coding: &str, limit: usize) -> Result<Bytes, BodyError> {
    let mut input = body;
    let mut out = Vec::new();
    while !input.is_empty() {
        let decoder = ruzstd::decoding::StreamingDecoder::new(&mut input)
            .map_err(|e| corrupt(coding, &e.to_string()))?;
        let remaining = limit.saturating_sub(out.len());
        out.extend_from_slice(&read_limited(decoder, coding, remaining)?);
    }
    if out.len() > limit {
        return Err(BodyError::TooLarge(limit));
    }
    Ok(Bytes::from(out))
}

fn read_limited(reader: impl Read, coding: &str, limit: usize) -> Result<Bytes, BodyError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Corrupt {
            coding: coding.to_string(),
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(BodyError::TooLarge(limit));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn decoding_table() {
        let text = br#"{"model":"gpt-4o","messages":[]}"#;
        type Case<'a> = (Vec<u8>, Option<&'a str>, Result<&'a [u8], &'a str>);
        let cases: Vec<Case> = vec![
            (text.to_vec(), None, Ok(text)),
            (text.to_vec(), Some("identity"), Ok(text)),
            (gzip(text), Some("gzip"), Ok(text)),
            (zlib(text), Some("deflate"), Ok(text)),
            (gzip(&zlib(text)), Some("deflate, gzip"), Ok(text)),
            (
                [gzip(b"amount=5"), gzip(b"000")].concat(),
                Some("gzip"),
                Ok(b"amount=5000"),
            ),
            (
                [zlib(text), b"junk".to_vec()].concat(),
                Some("deflate"),
                Err("trailing data"),
            ),
            (text.to_vec(), Some("gzip"), Err("not valid gzip")),
            (text.to_vec(), Some("compress"), Err("cannot be inspected")),
            (
                gzip(&[b'a'; 10_000]),
                Some("gzip"),
                Err("exceeds the inspection limit"),
            ),
        ];
        for (raw, coding, expected) in cases {
            let got = decode(Bytes::from(raw), coding, 4096);
            match (got, expected) {
                (Ok(body), Ok(want)) => assert_eq!(&body[..], want, "{coding:?}"),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{coding:?}: {e}"),
                (got, want) => panic!("{coding:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
