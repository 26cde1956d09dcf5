//! Comparing a presented secret (a bearer token) with the expected one.

/// Whether `presented` equals `expected`, compared without stopping at the first difference,
/// so that the time taken says nothing about how much of a guess was right. The time depends
/// on the length of `expected` only (a wrong length is folded into the result, not returned
/// early).
pub fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    let mut diff = expected.len() ^ presented.len();
    for (i, x) in expected.iter().enumerate() {
        // Past the end of `presented`, compare with a byte that always differs.
        diff |= usize::from(x ^ presented.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_every_byte_and_the_length_match() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"secret", b"secre"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(!constant_time_eq(b"x", b""));
        // A presented prefix padded with the complement of the rest is still refused.
        assert!(!constant_time_eq(b"ab", &[b'a', !b'b']));
    }
}
