//! Random identifiers and secrets from the system's CSPRNG, as lowercase hex.

/// `bytes` random bytes as hex (twice as many characters).
pub fn random_hex(bytes: usize) -> Result<String, ring::error::Unspecified> {
    let mut buf = vec![0u8; bytes];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
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
