//! Secrets: comparing a presented secret (a bearer token) with the expected one, and making
//! one nobody can guess.

use sha2::{Digest, Sha256};

/// Whether `presented` equals `expected`.
///
/// Both are hashed with SHA-256 and the two 32-byte digests compared byte by byte without
/// stopping at the first difference. The comparison therefore takes the same time whatever
/// the inputs, and what time the hashing takes depends on each input's own length: a caller
/// learns neither how much of a guess was right nor how long the expected secret is (a direct
/// compare must either stop at a length mismatch or walk the expected secret's length).
pub fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    let expected = Sha256::digest(expected);
    let presented = Sha256::digest(presented);
    let diff = expected
        .iter()
        .zip(presented.iter())
        .fold(0u8, |diff, (x, y)| diff | (x ^ y));
    // Keeps the compiler from turning the fold back into an early exit.
    std::hint::black_box(diff) == 0
}

/// 64 hex digits (256 bits) from the operating system's random source: a secret for
/// something nobody may use, such as a reply route with no configured token.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_every_byte_and_the_length_match() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"Secret"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"secret", b"secre"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(!constant_time_eq(b"x", b""));
        // A presented prefix padded with the complement of the rest is still refused.
        assert!(!constant_time_eq(b"ab", &[b'a', !b'b']));
        // A trailing zero byte is a different secret.
        assert!(!constant_time_eq(b"secret", b"secret\0"));
        let long = "x".repeat(10_000);
        assert!(constant_time_eq(long.as_bytes(), long.as_bytes()));
        assert!(!constant_time_eq(long.as_bytes(), &long.as_bytes()[1..]));
    }

    #[test]
    fn random_tokens_are_64_hex_digits_and_differ() {
        let (a, b) = (random_token(), random_token());
        for t in [&a, &b] {
            assert_eq!(t.len(), 64, "{t}");
            assert!(
                t.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                "{t}"
            );
        }
        assert_ne!(a, b);
    }
}
