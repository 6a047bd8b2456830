//! Handle syntax: the name a person picks, carried in their device certificates.
//!
//! A handle is shown to other people and used as the default TOFU address, so the rules keep
//! it printable and unambiguous on a screen: not empty, at most [`MAX_HANDLE_LEN`] bytes of
//! UTF-8, no control characters, no invisible formatting characters that reorder or hide text
//! (bidi overrides, zero-width spaces: the classic tricks to make one name look like another),
//! and no leading or trailing whitespace.

/// Longest handle, in UTF-8 bytes.
pub const MAX_HANDLE_LEN: usize = 64;

/// Why a handle is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// The empty string.
    #[error("handle is empty")]
    Empty,
    /// Longer than [`MAX_HANDLE_LEN`] bytes.
    #[error("handle is {0} bytes long, the limit is {MAX_HANDLE_LEN}")]
    TooLong(usize),
    /// A control or invisible formatting character.
    #[error("handle contains the invisible or control character U+{:04X}", u32::from(*.0))]
    InvisibleCharacter(char),
    /// Starts or ends with whitespace.
    #[error("handle starts or ends with whitespace")]
    SurroundingWhitespace,
}

/// Characters that are not `char::is_control` but still hide or reorder text.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'                  // soft hyphen
            | '\u{061C}'            // Arabic letter mark
            | '\u{180E}'            // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
            | '\u{2028}'..='\u{202E}' // line/paragraph separators, bidi embeddings/overrides
            | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, bidi isolates
            | '\u{FEFF}'            // zero-width no-break space
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
    )
}

/// Checks that `handle` follows the syntax above.
pub fn validate_handle(handle: &str) -> Result<(), HandleError> {
    if handle.is_empty() {
        return Err(HandleError::Empty);
    }
    if handle.len() > MAX_HANDLE_LEN {
        return Err(HandleError::TooLong(handle.len()));
    }
    if let Some(c) = handle
        .chars()
        .find(|c| c.is_control() || is_invisible_format(*c))
    {
        return Err(HandleError::InvisibleCharacter(c));
    }
    if handle.trim() != handle {
        return Err(HandleError::SurroundingWhitespace);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_handles_pass() {
        let long = "x".repeat(MAX_HANDLE_LEN);
        for h in ["alice", "Bob Smith", "zoë", "李", "a", long.as_str()] {
            assert_eq!(validate_handle(h), Ok(()), "{h:?}");
        }
    }

    #[test]
    fn bad_handles_are_refused() {
        assert_eq!(validate_handle(""), Err(HandleError::Empty));
        assert_eq!(
            validate_handle(&"x".repeat(MAX_HANDLE_LEN + 1)),
            Err(HandleError::TooLong(MAX_HANDLE_LEN + 1))
        );
        assert_eq!(
            validate_handle("al\nice"),
            Err(HandleError::InvisibleCharacter('\n'))
        );
        assert_eq!(
            validate_handle("ali\u{202E}ce"),
            Err(HandleError::InvisibleCharacter('\u{202E}'))
        );
        assert_eq!(
            validate_handle("a\u{200B}lice"),
            Err(HandleError::InvisibleCharacter('\u{200B}'))
        );
        assert_eq!(
            validate_handle(" alice"),
            Err(HandleError::SurroundingWhitespace)
        );
    }
}
