//! Fingerprints: the short, stable name of an identity key that people can compare.
//!
//! A fingerprint is SHA-256 of the 32 identity public key bytes (DESIGN §6). It is shown as
//! 64 lowercase hex digits in 16 groups of 4, separated by single spaces:
//!
//! ```text
//! 3f2a 9c01 77de 0b4e 51aa 6c3d 98f0 12be 4d7c a0e9 5b31 c6f8 20d4 e7a2 19bf 8c55
//! ```
//!
//! Groups of 4 are what people read aloud comfortably; lowercase matches the hex used in
//! topic names. Parsing accepts any case and ignores spaces, `:` and `-`, so a fingerprint
//! pasted from anywhere parses. The first [`SHORT_PREFIX_LEN`] bytes name the identity's inbox
//! topic (`chorus/inbox/<short hex>`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::IdentityPublicKey;
use crate::qr::{QrError, TerminalBackground, render_terminal};

/// Length of a fingerprint in bytes.
pub const FINGERPRINT_LEN: usize = 32;

/// Bytes of the fingerprint used as its short form (inbox topic names). 64 bits: a collision
/// only makes two identities share an inbox topic, whose messages are encrypted anyway.
pub const SHORT_PREFIX_LEN: usize = 8;

/// SHA-256 of an identity public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Fingerprint([u8; FINGERPRINT_LEN]);

/// Why text is not a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintParseError {
    /// A character other than a hex digit or a separator.
    #[error("unexpected character {0:?} in fingerprint")]
    BadCharacter(char),
    /// Not 64 hex digits.
    #[error("a fingerprint has 64 hex digits, got {0}")]
    Length(usize),
}

impl Fingerprint {
    /// The fingerprint of `key`.
    pub fn of(key: &IdentityPublicKey) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; FINGERPRINT_LEN] {
        &self.0
    }

    /// Wraps raw fingerprint bytes (e.g. read back from storage).
    pub const fn from_bytes(bytes: [u8; FINGERPRINT_LEN]) -> Self {
        Self(bytes)
    }

    /// The first [`SHORT_PREFIX_LEN`] bytes.
    pub fn short_prefix(&self) -> [u8; SHORT_PREFIX_LEN] {
        let mut out = [0u8; SHORT_PREFIX_LEN];
        out.copy_from_slice(&self.0[..SHORT_PREFIX_LEN]);
        out
    }

    /// The short prefix as 16 lowercase hex digits without spaces: the inbox topic suffix.
    pub fn short_hex(&self) -> String {
        hex::encode(self.short_prefix())
    }

    /// The fingerprint as 64 hex digits without spaces.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The displayed fingerprint as a terminal QR code.
    pub fn to_qr_terminal(&self, background: TerminalBackground) -> Result<String, QrError> {
        render_terminal(self.to_string().as_bytes(), background)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pair) in self.0.chunks(2).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&hex::encode(pair))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintParseError;

    /// Parses 64 hex digits in any case, ignoring whitespace, `:` and `-`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut digits = Vec::with_capacity(FINGERPRINT_LEN * 2);
        for c in s.chars() {
            if c.is_whitespace() || c == ':' || c == '-' {
                continue;
            }
            let value = c
                .to_digit(16)
                .ok_or(FingerprintParseError::BadCharacter(c))?;
            if digits.len() == FINGERPRINT_LEN * 2 {
                // Keep counting for the error message without growing the buffer.
                let extra = s.chars().filter(|c| c.is_ascii_hexdigit()).count();
                return Err(FingerprintParseError::Length(extra));
            }
            digits.push(value as u8);
        }
        if digits.len() != FINGERPRINT_LEN * 2 {
            return Err(FingerprintParseError::Length(digits.len()));
        }
        let mut out = [0u8; FINGERPRINT_LEN];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = (pair[0] << 4) | pair[1];
        }
        Ok(Self(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::IdentityKey;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn fingerprint(seed: u64) -> Fingerprint {
        IdentityKey::generate(&mut StdRng::seed_from_u64(seed)).fingerprint()
    }

    #[test]
    fn is_sha256_of_the_public_key() {
        let key = IdentityKey::generate(&mut StdRng::seed_from_u64(1)).public();
        let expected: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        assert_eq!(key.fingerprint().as_bytes(), &expected);
    }

    #[test]
    fn display_is_16_groups_of_4_lowercase_hex() {
        let text = fingerprint(1).to_string();
        let groups: Vec<&str> = text.split(' ').collect();
        assert_eq!(groups.len(), 16);
        assert!(groups.iter().all(|g| {
            g.len() == 4
                && g.chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        }));
    }

    #[test]
    fn parse_is_tolerant_of_case_and_separators() {
        let fp = fingerprint(2);
        let text = fp.to_string();
        assert_eq!(text.parse::<Fingerprint>().unwrap(), fp);
        assert_eq!(text.to_uppercase().parse::<Fingerprint>().unwrap(), fp);
        assert_eq!(fp.to_hex().parse::<Fingerprint>().unwrap(), fp);
        assert_eq!(text.replace(' ', "-").parse::<Fingerprint>().unwrap(), fp);
        assert_eq!(
            format!("  {}\n", text.replace(' ', "  "))
                .parse::<Fingerprint>()
                .unwrap(),
            fp
        );
    }

    #[test]
    fn parse_rejects_wrong_length_and_characters() {
        let text = fingerprint(3).to_hex();
        assert_eq!(
            text[..62].parse::<Fingerprint>(),
            Err(FingerprintParseError::Length(62))
        );
        assert_eq!(
            format!("{text}00").parse::<Fingerprint>(),
            Err(FingerprintParseError::Length(66))
        );
        assert_eq!(
            format!("{}g", &text[..63]).parse::<Fingerprint>(),
            Err(FingerprintParseError::BadCharacter('g'))
        );
    }

    #[test]
    fn short_prefix_is_the_start_of_the_hex() {
        let fp = fingerprint(4);
        assert_eq!(fp.short_hex().len(), SHORT_PREFIX_LEN * 2);
        assert!(fp.to_hex().starts_with(&fp.short_hex()));
    }

    #[test]
    fn qr_differs_between_fingerprints() {
        let a = fingerprint(5)
            .to_qr_terminal(TerminalBackground::Dark)
            .unwrap();
        let b = fingerprint(6)
            .to_qr_terminal(TerminalBackground::Dark)
            .unwrap();
        assert!(!a.is_empty());
        assert_ne!(a, b);
    }
}
