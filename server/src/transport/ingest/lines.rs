//! Newline-delimited framing of a streamed body: lines as they complete,
//! each at most a set length (a longer one is reported, never buffered).

/// One line of the body, numbered from 1.
#[derive(Debug, PartialEq)]
pub enum Line {
    /// The line's bytes, without its `\n` (or `\r\n`).
    Text(usize, Vec<u8>),
    /// A line longer than allowed, skipped.
    TooLong(usize),
}

/// Splits a body, fed in chunks, into lines.
pub struct Lines {
    max_line: usize,
    partial: Vec<u8>,
    /// The number of the line being read.
    number: usize,
    /// The current line is too long: skip to its end.
    skipping: bool,
}

impl Lines {
    pub fn new(max_line: usize) -> Self {
        Self {
            max_line,
            partial: Vec::new(),
            number: 1,
            skipping: false,
        }
    }

    /// Feeds the next chunk; returns the lines it completed. Blank lines are
    /// counted but not returned.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Vec<Line> {
        let mut lines = Vec::new();
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            self.take(&chunk[..end]);
            lines.extend(self.complete());
            chunk = &chunk[end + 1..];
        }
        self.take(chunk);
        lines
    }

    /// The last line, when the body does not end with a newline.
    pub fn end(&mut self) -> Option<Line> {
        if self.partial.is_empty() && !self.skipping {
            return None;
        }
        self.complete()
    }

    fn take(&mut self, bytes: &[u8]) {
        if self.skipping {
            return;
        }
        if self.partial.len() + bytes.len() > self.max_line {
            self.skipping = true;
            self.partial = Vec::new();
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }

    fn complete(&mut self) -> Option<Line> {
        let number = self.number;
        self.number += 1;
        if std::mem::take(&mut self.skipping) {
            return Some(Line::TooLong(number));
        }
        let mut text = std::mem::take(&mut self.partial);
        if text.last() == Some(&b'\r') {
            text.pop();
        }
        if text.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        Some(Line::Text(number, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_across_chunks_and_numbers_every_line() {
        let mut lines = Lines::new(8);
        let mut out = lines.feed(b"ab");
        out.extend(lines.feed(b"c\r\n\nxyz0123456789\n"));
        out.extend(lines.feed(b"d\n  \ne"));
        out.extend(lines.end());
        assert_eq!(
            out,
            vec![
                Line::Text(1, b"abc".to_vec()),
                Line::TooLong(3),
                Line::Text(4, b"d".to_vec()),
                Line::Text(6, b"e".to_vec()),
            ]
        );
        assert_eq!(lines.end(), None);
    }

    #[test]
    fn a_line_just_at_the_limit_is_kept() {
        let mut lines = Lines::new(3);
        let mut out = lines.feed(b"abc\nabcd");
        out.extend(lines.end());
        assert_eq!(out, vec![Line::Text(1, b"abc".to_vec()), Line::TooLong(2)]);
    }
}
