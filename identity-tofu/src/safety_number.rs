//! Safety numbers: one number two people compare to check they hold each other's keys.
//!
//! Signal's construction, with Chorus's own labels. For each of the two identity keys:
//!
//! ```text
//! h = SHA-512("chorus safety number" || version (u16 BE) || key)
//! repeat ITERATIONS times: h = SHA-512(h || key)
//! half = for each of the first 6 five-byte chunks c of h: format("{:05}", c as u40 BE % 100000)
//! ```
//!
//! giving 30 digits per key. The number is the two halves concatenated smaller-first, so both
//! people see the *same* 60 digits whoever computes it, and it changes if either key changes.
//! The iterations make it costlier to grind for a key whose half matches someone else's.
//!
//! It is shown as 12 groups of 5 digits, and a typed-in number is accepted with any spacing.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha512};

use crate::keys::IdentityPublicKey;
use crate::qr::{QrError, TerminalBackground, render_terminal};

/// Version of the construction, hashed in so that a future change gives different numbers.
pub const SAFETY_NUMBER_VERSION: u16 = 1;

/// Hash iterations per half (Signal uses 5200).
pub const ITERATIONS: usize = 5200;

/// Digits in a whole safety number.
pub const SAFETY_NUMBER_DIGITS: usize = 60;

const HALF_DIGITS: usize = SAFETY_NUMBER_DIGITS / 2;
const GROUP: usize = 5;
const DOMAIN: &[u8] = b"chorus safety number";

/// The safety number of a pair of identities. Order-independent: `new(a, b) == new(b, a)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SafetyNumber {
    /// ASCII digits.
    digits: [u8; SAFETY_NUMBER_DIGITS],
}

/// Why typed text is not a safety number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SafetyNumberParseError {
    /// Something other than a digit or whitespace.
    #[error("unexpected character {0:?} in safety number")]
    BadCharacter(char),
    /// Not 60 digits.
    #[error("a safety number has 60 digits, got {0}")]
    Length(usize),
}

/// The 30 digits one identity key contributes.
fn half(key: &IdentityPublicKey) -> [u8; HALF_DIGITS] {
    let mut hasher = Sha512::new();
    hasher.update(DOMAIN);
    hasher.update(SAFETY_NUMBER_VERSION.to_be_bytes());
    hasher.update(key.as_bytes());
    let mut hash = hasher.finalize();
    for _ in 0..ITERATIONS {
        let mut hasher = Sha512::new();
        hasher.update(hash);
        hasher.update(key.as_bytes());
        hash = hasher.finalize();
    }
    let mut out = [0u8; HALF_DIGITS];
    for (chunk, digits) in hash.chunks_exact(5).zip(out.chunks_exact_mut(GROUP)) {
        let value = chunk
            .iter()
            .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte))
            % 100_000;
        let mut rest = value;
        for digit in digits.iter_mut().rev() {
            // `rest % 10` is below 10, so the cast cannot truncate.
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
    }
    out
}

impl SafetyNumber {
    /// The safety number of identities `a` and `b`, the same whichever is given first.
    pub fn new(a: &IdentityPublicKey, b: &IdentityPublicKey) -> Self {
        let (ha, hb) = (half(a), half(b));
        let (first, second) = if ha <= hb { (ha, hb) } else { (hb, ha) };
        let mut digits = [0u8; SAFETY_NUMBER_DIGITS];
        digits[..HALF_DIGITS].copy_from_slice(&first);
        digits[HALF_DIGITS..].copy_from_slice(&second);
        Self { digits }
    }

    /// The 60 digits without spaces.
    pub fn digits(&self) -> &str {
        // Only ASCII digits are ever stored; the fallback is unreachable but panic-free.
        std::str::from_utf8(&self.digits).unwrap_or_default()
    }

    /// True when `typed` (any spacing) is this number. Malformed text simply does not match.
    pub fn matches_typed(&self, typed: &str) -> bool {
        typed.parse::<SafetyNumber>().is_ok_and(|n| n == *self)
    }

    /// The number as a terminal QR code (of its 60 digits, QR numeric mode).
    pub fn to_qr_terminal(&self, background: TerminalBackground) -> Result<String, QrError> {
        render_terminal(&self.digits, background)
    }
}

impl fmt::Display for SafetyNumber {
    /// 12 groups of 5 digits separated by single spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, group) in self.digits().as_bytes().chunks(GROUP).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(std::str::from_utf8(group).unwrap_or_default())?;
        }
        Ok(())
    }
}

impl fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SafetyNumber({self})")
    }
}

impl FromStr for SafetyNumber {
    type Err = SafetyNumberParseError;

    /// Parses 60 digits, ignoring any whitespace (and `-`, which some people type between
    /// groups).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut digits = [0u8; SAFETY_NUMBER_DIGITS];
        let mut count = 0usize;
        for c in s.chars() {
            if c.is_whitespace() || c == '-' {
                continue;
            }
            if !c.is_ascii_digit() {
                return Err(SafetyNumberParseError::BadCharacter(c));
            }
            if let Some(slot) = digits.get_mut(count) {
                // ASCII digit, so it fits in one byte.
                *slot = c as u8;
            }
            count += 1;
        }
        if count != SAFETY_NUMBER_DIGITS {
            return Err(SafetyNumberParseError::Length(count));
        }
        Ok(Self { digits })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::IdentityKey;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn keys(seed: u64) -> (IdentityPublicKey, IdentityPublicKey, IdentityPublicKey) {
        let mut rng = StdRng::seed_from_u64(seed);
        (
            IdentityKey::generate(&mut rng).public(),
            IdentityKey::generate(&mut rng).public(),
            IdentityKey::generate(&mut rng).public(),
        )
    }

    #[test]
    fn same_on_both_sides() {
        let (a, b, _) = keys(1);
        assert_eq!(SafetyNumber::new(&a, &b), SafetyNumber::new(&b, &a));
    }

    #[test]
    fn changes_when_either_key_changes() {
        let (a, b, c) = keys(2);
        let ab = SafetyNumber::new(&a, &b);
        assert_ne!(ab, SafetyNumber::new(&a, &c));
        assert_ne!(ab, SafetyNumber::new(&c, &b));
    }

    #[test]
    fn shape_is_12_groups_of_5_digits() {
        let (a, b, _) = keys(3);
        let n = SafetyNumber::new(&a, &b);
        assert_eq!(n.digits().len(), 60);
        let text = n.to_string();
        let groups: Vec<&str> = text.split(' ').collect();
        assert_eq!(groups.len(), 12);
        assert!(
            groups
                .iter()
                .all(|g| g.len() == 5 && g.bytes().all(|c| c.is_ascii_digit()))
        );
    }

    #[test]
    fn each_half_belongs_to_one_key() {
        // The half a key contributes does not depend on the other key.
        let (a, b, c) = keys(4);
        let ha = half(&a);
        for n in [SafetyNumber::new(&a, &b), SafetyNumber::new(&c, &a)] {
            let d = n.digits().as_bytes();
            assert!(d[..30] == ha || d[30..] == ha);
        }
    }

    #[test]
    fn typed_number_is_tolerant_of_spacing() {
        let (a, b, _) = keys(5);
        let n = SafetyNumber::new(&a, &b);
        assert!(n.matches_typed(&n.to_string()));
        assert!(n.matches_typed(n.digits()));
        assert!(n.matches_typed(&format!(" {} \n", n.to_string().replace(' ', "\t  "))));
        let grouped_by_ten: String = n
            .digits()
            .as_bytes()
            .chunks(10)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("-");
        assert!(n.matches_typed(&grouped_by_ten));
    }

    #[test]
    fn wrong_or_malformed_typed_numbers_do_not_match() {
        let (a, b, _) = keys(6);
        let n = SafetyNumber::new(&a, &b);
        let mut wrong = n.digits().to_string().into_bytes();
        wrong[17] = if wrong[17] == b'9' {
            b'0'
        } else {
            wrong[17] + 1
        };
        assert!(!n.matches_typed(std::str::from_utf8(&wrong).unwrap()));
        assert!(!n.matches_typed(&n.digits()[..59]));
        assert!(!n.matches_typed(&format!("{}0", n.digits())));
        assert_eq!(
            "12345 abcde".parse::<SafetyNumber>(),
            Err(SafetyNumberParseError::BadCharacter('a'))
        );
        assert_eq!(
            "".parse::<SafetyNumber>(),
            Err(SafetyNumberParseError::Length(0))
        );
    }

    #[test]
    fn qr_renders_and_differs_for_different_numbers() {
        let (a, b, c) = keys(7);
        let ab = SafetyNumber::new(&a, &b)
            .to_qr_terminal(TerminalBackground::Dark)
            .unwrap();
        let ac = SafetyNumber::new(&a, &c)
            .to_qr_terminal(TerminalBackground::Dark)
            .unwrap();
        assert!(ab.lines().count() > 10);
        assert!(
            ab.chars()
                .any(|c| c == '\u{2588}' || c == '\u{2580}' || c == '\u{2584}')
        );
        assert_ne!(ab, ac);
    }
}
