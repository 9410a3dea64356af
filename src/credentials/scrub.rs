//! An answer of a brokered host with the secret taken out wherever it appears (an upstream that
//! echoes request headers would otherwise hand the agent the key). Only what could still complete
//! the secret is held back between chunks.

use bytes::Bytes;

use crate::secret::Secret;

/// What the agent sees where the secret was.
pub const SCRUBBED: &[u8] = b"[credential]";

/// Removes one secret from a stream of bytes.
pub struct Scrub {
    needle: Vec<u8>,
    pending: Vec<u8>,
}

impl Scrub {
    /// Scrubs `secret`.
    pub fn new(secret: &Secret) -> Scrub {
        Scrub {
            needle: secret.expose().as_bytes().to_vec(),
            pending: Vec::new(),
        }
    }

    /// What may go out now: everything but a tail that could still become the secret.
    pub fn push(&mut self, data: &[u8]) -> Bytes {
        self.pending.extend_from_slice(data);
        let replaced = replace(&self.pending, &self.needle);
        let hold = held_tail(&replaced, &self.needle);
        let out = replaced[..replaced.len() - hold].to_vec();
        self.pending = replaced[replaced.len() - hold..].to_vec();
        Bytes::from(out)
    }

    /// The held tail, at the end of the body.
    pub fn finish(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.pending))
    }

    /// `value` with the secret replaced, for a header.
    pub fn header(&self, value: &[u8]) -> Option<Vec<u8>> {
        memchr::memmem::find(value, &self.needle).map(|_| replace(value, &self.needle))
    }
}

fn replace(haystack: &[u8], needle: &[u8]) -> Vec<u8> {
    if needle.is_empty() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut at = 0;
    for found in memchr::memmem::find_iter(haystack, needle) {
        if found < at {
            continue;
        }
        out.extend_from_slice(&haystack[at..found]);
        out.extend_from_slice(SCRUBBED);
        at = found + needle.len();
    }
    out.extend_from_slice(&haystack[at..]);
    out
}

/// The length of the longest tail of `buf` that is a proper start of `needle`.
fn held_tail(buf: &[u8], needle: &[u8]) -> usize {
    let longest = needle.len().saturating_sub(1).min(buf.len());
    (1..=longest)
        .rev()
        .find(|&n| buf[buf.len() - n..] == needle[..n])
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_taken_out_however_the_answer_is_cut() {
        let secret = Secret::new("sk-real-0123456789".into());
        let answer = b"{\"echo\":\"Bearer sk-real-0123456789\",\"again\":\"sk-real-0123456789\",\"near\":\"sk-real-01\"}";
        let expected = b"{\"echo\":\"Bearer [credential]\",\"again\":\"[credential]\",\"near\":\"sk-real-01\"}";
        for size in 1..answer.len() {
            let mut scrub = Scrub::new(&secret);
            let mut out = Vec::new();
            for chunk in answer.chunks(size) {
                out.extend_from_slice(&scrub.push(chunk));
            }
            out.extend_from_slice(&scrub.finish());
            assert_eq!(out, expected.to_vec(), "chunks of {size}");
        }
        let scrub = Scrub::new(&secret);
        assert_eq!(
            scrub.header(b"x sk-real-0123456789").unwrap(),
            b"x [credential]"
        );
        assert!(scrub.header(b"nothing").is_none());
    }
}
