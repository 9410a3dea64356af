//! A few bytes on the stack: the digits of one number, copied out for a checksum or a phone
//! plan. Allocating them on the heap was a fourteenth of the scan of text dense with numbers.

use std::ops::Deref;

/// Up to `N` bytes, held inline.
pub(super) struct Inline<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Inline<N> {
    /// Holding nothing.
    pub(super) fn new() -> Self {
        Inline {
            bytes: [0; N],
            len: 0,
        }
    }

    /// Appends `part`. Every caller bounds what it appends by `N` (a number of at most
    /// [`super::cards::LONGEST_RUN`] digits, a phone number of at most 14); past `N` the rest
    /// would be dropped, which a debug build refuses.
    pub(super) fn extend(&mut self, part: &[u8]) {
        debug_assert!(
            self.len + part.len() <= N,
            "{} + {} > {N}",
            self.len,
            part.len()
        );
        let take = part.len().min(N - self.len);
        self.bytes[self.len..self.len + take].copy_from_slice(&part[..take]);
        self.len += take;
    }

    /// Appends one byte (see [`Inline::extend`]).
    pub(super) fn push(&mut self, byte: u8) {
        self.extend(&[byte]);
    }

    /// Appends the values of the ASCII digits `digits` (`b"42"` as `[4, 2]`), a byte at a time
    /// (see [`Inline::extend`]): a call to copy a few bytes cost more than the copy.
    pub(super) fn extend_values(&mut self, digits: &[u8]) {
        debug_assert!(
            self.len + digits.len() <= N,
            "{} + {} > {N}",
            self.len,
            digits.len()
        );
        for &d in digits {
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = d.wrapping_sub(b'0');
                self.len += 1;
            }
        }
    }

    /// The bytes as text: callers append ASCII digits and `+` only, so it is all of them.
    pub(super) fn as_str(&self) -> &str {
        std::str::from_utf8(self).unwrap_or_default()
    }
}

impl<const N: usize> Deref for Inline<N> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::Inline;

    #[test]
    fn holds_what_is_appended() {
        let mut digits = Inline::<8>::new();
        assert_eq!(&*digits, b"");
        digits.push(b'+');
        digits.extend(b"4930");
        digits.extend(b"");
        digits.extend(b"123");
        assert_eq!(&*digits, b"+4930123");
        assert_eq!(digits.as_str(), "+4930123");
        let mut values = Inline::<4>::new();
        values.extend_values(b"09");
        values.extend_values(b"37");
        assert_eq!(&*values, &[0, 9, 3, 7]);
    }
}
