//! Line and column of a byte offset, the way errors report them.

/// Turns byte offsets into 1-based line and column (in characters), moving forward.
#[derive(Clone, Copy)]
pub(crate) struct Cursor {
    offset: usize,
    line: u32,
    column: u32,
}

impl Default for Cursor {
    fn default() -> Self {
        Cursor {
            offset: 0,
            line: 1,
            column: 1,
        }
    }
}

impl Cursor {
    /// The position of `offset` in `text`; cheapest when offsets come in increasing order.
    pub(crate) fn at(&mut self, text: &str, offset: usize) -> (u32, u32) {
        if offset < self.offset {
            *self = Cursor::default();
        }
        let bytes = text.as_bytes();
        let end = offset.min(bytes.len());
        let span = bytes.get(self.offset..end).unwrap_or_default();
        // Fast path without CR: count LFs, then characters after the last one.
        if !span.contains(&b'\r') {
            let is_char_start = |b: &u8| b & 0xC0 != 0x80;
            let lines = span.iter().filter(|&&b| b == b'\n').count();
            let tail = match span.iter().rposition(|&b| b == b'\n') {
                Some(lf) => {
                    self.line = self
                        .line
                        .saturating_add(u32::try_from(lines).unwrap_or(u32::MAX));
                    self.column = 1;
                    span.get(lf + 1..).unwrap_or_default()
                }
                None => span,
            };
            let chars = tail.iter().filter(|b| is_char_start(b)).count();
            self.column = self
                .column
                .saturating_add(u32::try_from(chars).unwrap_or(u32::MAX));
            self.offset = end;
            return (self.line, self.column);
        }
        for i in self.offset..end {
            match bytes.get(i) {
                Some(b'\n') => self.newline(),
                // A CR alone ends a line; in CR LF the LF does.
                Some(b'\r') if bytes.get(i + 1) != Some(&b'\n') => self.newline(),
                Some(b'\r') => {}
                Some(&b) if b & 0xC0 != 0x80 => self.column = self.column.saturating_add(1),
                _ => {}
            }
        }
        self.offset = end;
        (self.line, self.column)
    }

    fn newline(&mut self) {
        self.line = self.line.saturating_add(1);
        self.column = 1;
    }
}
