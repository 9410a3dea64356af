//! Random identifiers and secrets from the system's CSPRNG, as lowercase hex, and the ids of
//! requests and decisions.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// `bytes` random bytes as hex (twice as many characters).
pub fn random_hex(bytes: usize) -> Result<String, ring::error::Unspecified> {
    let mut buf = vec![0u8; bytes];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)?;
    Ok(hex::encode(buf))
}

/// A fresh id for a request or a decision: a random per-process prefix and a counter, unique
/// across restarts in practice and cheap (no system call per request).
pub fn request_id() -> String {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 4];
        let rng = ring::rand::SystemRandom::new();
        let _ = ring::rand::SecureRandom::fill(&rng, &mut bytes);
        u32::from_be_bytes(bytes)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix:08x}{n:08x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_of_the_asked_length_and_never_twice_the_same() {
        let a = super::random_hex(8).unwrap();
        assert_eq!(a.len(), 16);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, super::random_hex(8).unwrap());
    }
}
