//! The input line: a cursor inside the text being typed, and the lines sent before (Up/Down),
//! like a shell's. Editing a line recalled from the history edits a copy; the line being typed
//! when browsing started comes back below the newest entry.

use super::text::{char_width, width};

/// Lines kept for Up/Down.
const HISTORY: usize = 500;

#[derive(Debug, Default)]
pub struct Input {
    chars: Vec<char>,
    /// Index into `chars`: the cursor sits before this character.
    cursor: usize,
    history: Vec<String>,
    /// The history entry shown, while browsing.
    browsing: Option<usize>,
    /// What was typed before browsing started.
    draft: Vec<char>,
}

impl Input {
    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    pub fn insert(&mut self, c: char) {
        self.chars.insert(self.cursor, c);
        self.cursor += 1;
    }

    /// Pasted text, on one line (a paste of several lines becomes one message, not several).
    pub fn insert_str(&mut self, text: &str) {
        for c in text.chars() {
            match c {
                '\r' | '\n' | '\t' => self.insert(' '),
                c if c.is_control() => {}
                c => self.insert(c),
            }
        }
    }

    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.chars.len());
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.chars.len();
    }

    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.chars.remove(self.cursor);
        }
    }

    pub fn delete(&mut self) {
        if self.cursor < self.chars.len() {
            self.chars.remove(self.cursor);
        }
    }

    /// The previous history entry.
    pub fn up(&mut self) {
        let at = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.draft = std::mem::take(&mut self.chars);
                self.history.len() - 1
            }
            Some(i) => i.saturating_sub(1),
        };
        self.show(at);
    }

    /// The next history entry, or back to the draft after the newest.
    pub fn down(&mut self) {
        let Some(i) = self.browsing else { return };
        if i + 1 < self.history.len() {
            self.show(i + 1);
        } else {
            self.browsing = None;
            self.chars = std::mem::take(&mut self.draft);
            self.cursor = self.chars.len();
        }
    }

    fn show(&mut self, at: usize) {
        self.browsing = Some(at);
        self.chars = self.history[at].chars().collect();
        self.cursor = self.chars.len();
    }

    /// Enter: the line, trimmed, now in the history (unless empty or the same as the last).
    pub fn take(&mut self) -> String {
        let line = self.text().trim().to_string();
        self.chars.clear();
        self.cursor = 0;
        self.browsing = None;
        self.draft.clear();
        if !line.is_empty() && self.history.last() != Some(&line) {
            if self.history.len() == HISTORY {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        line
    }

    /// The part of the line shown in `columns` columns, and the cursor's column in it: the
    /// view slides so that the cursor stays visible (with its cell free at the end).
    pub fn view(&self, columns: usize) -> (String, usize) {
        if columns == 0 {
            return (String::new(), 0);
        }
        // From the cursor back, as much as fits with the cursor's own cell.
        let mut start = self.cursor;
        let mut used = 1;
        while start > 0 && used + char_width(self.chars[start - 1]) <= columns {
            start -= 1;
            used += char_width(self.chars[start]);
        }
        let before: String = self.chars[start..self.cursor].iter().collect();
        let column = width(&before);
        let mut shown = before;
        let mut used = column;
        for &c in &self.chars[self.cursor..] {
            if used + char_width(c) > columns {
                break;
            }
            used += char_width(c);
            shown.push(c);
        }
        (shown, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> Input {
        let mut input = Input::default();
        text.chars().for_each(|c| input.insert(c));
        input
    }

    #[test]
    fn edits_at_the_cursor() {
        let mut input = typed("helo");
        input.left();
        input.insert('l');
        assert_eq!(input.text(), "hello");
        input.home();
        input.delete();
        input.insert('H');
        input.end();
        input.backspace();
        input.insert('!');
        assert_eq!(input.text(), "Hell!");
        input.home();
        input.backspace();
        input.left();
        assert_eq!(input.text(), "Hell!", "nothing before the start");
        input.end();
        input.delete();
        input.right();
        input.insert('?');
        assert_eq!(input.text(), "Hell!?", "nothing after the end");
    }

    #[test]
    fn history_browses_and_returns_to_the_draft() {
        let mut input = Input::default();
        for line in ["one", "two", "two", "  ", "three"] {
            line.chars().for_each(|c| input.insert(c));
            input.take();
        }
        input.insert('d');
        input.up();
        assert_eq!(input.text(), "three");
        input.up();
        input.up();
        input.up();
        assert_eq!(
            input.text(),
            "one",
            "duplicates and blanks are not kept; stops at the oldest"
        );
        input.down();
        assert_eq!(input.text(), "two");
        input.down();
        input.down();
        assert_eq!(input.text(), "d", "the draft comes back");
        input.down();
        assert_eq!(input.text(), "d");
    }

    #[test]
    fn enter_trims_and_clears() {
        let mut input = typed("  hi there ");
        assert_eq!(input.take(), "hi there");
        assert!(input.is_empty());
        assert_eq!(input.take(), "");
    }

    #[test]
    fn pastes_stay_on_one_line() {
        let mut input = Input::default();
        input.insert_str("a\r\nb\x1bc");
        assert_eq!(input.text(), "a  bc");
    }

    #[test]
    fn the_view_follows_the_cursor() {
        let mut input = typed("abcdefghij");
        assert_eq!(input.view(5), ("ghij".into(), 4));
        input.home();
        assert_eq!(input.view(5), ("abcde".into(), 0));
        input.right();
        input.right();
        assert_eq!(input.view(5), ("abcde".into(), 2));
        assert_eq!(input.view(0), (String::new(), 0));
        let short = typed("ab");
        assert_eq!(short.view(10), ("ab".into(), 2));
    }
}
