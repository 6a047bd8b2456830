//! Text for a terminal: control characters taken out (peers choose handles and messages, and
//! an escape sequence in either must not drive the reader's terminal), display widths, and
//! wrapping into rows.
//!
//! Widths are approximate without the Unicode tables: combining marks count 0, the common
//! East Asian wide and emoji blocks 2, everything else 1. A row that is off by one for an
//! unusual character is cut by the terminal, never a panic.

/// `text` with every control character (ESC, CR, BEL, …) but `\n` replaced: tabs by a space,
/// the rest by U+FFFD.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' => '\n',
            '\t' => ' ',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// The columns a character takes.
pub fn char_width(c: char) -> usize {
    let u = c as u32;
    if c.is_control() || (0x300..=0x36f).contains(&u) || (0x200b..=0x200f).contains(&u) {
        return 0;
    }
    const WIDE: [(u32, u32); 10] = [
        (0x1100, 0x115f),
        (0x2e80, 0xa4cf),
        (0xac00, 0xd7a3),
        (0xf900, 0xfaff),
        (0xfe30, 0xfe4f),
        (0xff00, 0xff60),
        (0xffe0, 0xffe6),
        (0x1f300, 0x1f64f),
        (0x1f900, 0x1f9ff),
        (0x20000, 0x3fffd),
    ];
    if WIDE.iter().any(|&(lo, hi)| (lo..=hi).contains(&u)) {
        2
    } else {
        1
    }
}

/// The columns a string takes.
pub fn width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// The longest prefix of `text` that fits in `columns`.
pub fn fit(text: &str, columns: usize) -> &str {
    let mut used = 0;
    for (i, c) in text.char_indices() {
        used += char_width(c);
        if used > columns {
            return &text[..i];
        }
    }
    text
}

/// `text` cut to `columns`, ending in `…` when something was cut.
pub fn ellipsize(text: &str, columns: usize) -> String {
    if width(text) <= columns {
        return text.to_string();
    }
    if columns == 0 {
        return String::new();
    }
    format!("{}…", fit(text, columns - 1))
}

/// Splits `text` into rows of at most `columns` columns, at its `\n`s and then at the last
/// space that fits (mid-word only when a word is longer than a row). Rows after the first are
/// indented by `hang` spaces, so a wrapped message lines up under its text; the indent is
/// dropped when it would leave less than half the row.
pub fn wrap(text: &str, columns: usize, hang: usize) -> Vec<String> {
    let columns = columns.max(1);
    let hang = if hang * 2 <= columns { hang } else { 0 };
    let mut rows: Vec<String> = Vec::new();
    for paragraph in text.split('\n') {
        let chars: Vec<char> = paragraph.chars().collect();
        let mut start = 0;
        loop {
            let indent = if rows.is_empty() { 0 } else { hang };
            let room = columns - indent;
            let mut end = start;
            let mut used = 0;
            while end < chars.len() && used + char_width(chars[end]) <= room {
                used += char_width(chars[end]);
                end += 1;
            }
            let pad = " ".repeat(indent);
            if end == chars.len() {
                let row: String = chars[start..end].iter().collect();
                rows.push(format!("{pad}{}", row.trim_end()));
                break;
            }
            // A character wider than the whole row still takes a row of its own.
            if end == start {
                end = start + 1;
            }
            // Break at the last space inside the row, or at the space right after it.
            let cut = (start + 1..=end.min(chars.len() - 1))
                .rev()
                .find(|&i| chars[i] == ' ')
                .unwrap_or(end);
            let row: String = chars[start..cut].iter().collect();
            rows.push(format!("{pad}{}", row.trim_end()));
            start = cut;
            while start < chars.len() && chars[start] == ' ' {
                start += 1;
            }
            if start == chars.len() {
                break;
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_defused() {
        assert_eq!(
            printable("hi\x1b[2J\tthere\r\nbye\x07"),
            "hi\u{fffd}[2J there\u{fffd}\nbye\u{fffd}"
        );
    }

    #[test]
    fn widths() {
        assert_eq!(width("abc"), 3);
        assert_eq!(width("日本"), 4);
        assert_eq!(width("e\u{301}"), 1);
        assert_eq!(fit("日本語", 5), "日本");
        assert_eq!(ellipsize("abcdef", 4), "abc…");
        assert_eq!(ellipsize("abc", 4), "abc");
        assert_eq!(ellipsize("abc", 0), "");
    }

    #[test]
    fn wraps_at_spaces_with_a_hanging_indent() {
        assert_eq!(
            wrap("[12:00] ann: the quick brown fox jumps", 20, 8),
            [
                "[12:00] ann: the",
                "        quick brown",
                "        fox jumps"
            ]
        );
    }

    #[test]
    fn breaks_long_words_and_keeps_newlines() {
        assert_eq!(wrap("abcdefghij", 4, 0), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("a\n\nb", 10, 2), ["a", "  ", "  b"]);
        assert_eq!(wrap("", 10, 0), [""]);
        assert_eq!(wrap("ab   ", 2, 0), ["ab"]);
    }

    #[test]
    fn every_row_fits_whatever_the_width() {
        let text = "a fairly long line, with 日本語 and     spaces, https://example.org/averyveryverylongpath ok";
        for columns in 0..40 {
            for hang in [0, 3, 8] {
                let rows = wrap(text, columns, hang);
                assert!(!rows.is_empty());
                for row in &rows {
                    // One wide character in a one-column row is the only overflow allowed.
                    assert!(
                        width(row) <= columns.max(1) || row.chars().count() == 1,
                        "{columns}/{hang}: {row:?}"
                    );
                }
                let words = |s: &str| s.split_whitespace().collect::<String>();
                let joined: String = rows.iter().map(|r| words(r)).collect();
                assert_eq!(joined, words(text), "{columns}/{hang}: nothing lost");
            }
        }
    }
}
