//! CSV catalogs through the `csv` crate (RFC 4180 quoting, `""` escapes, quoted line breaks,
//! `\n` or `\r\n`), instead of the hand-written reader this replaces, plus what a catalog
//! import needs on top: the delimiter a shop's spreadsheet export used, the line each record
//! starts on for error messages, and a fatal error for a quote that is never closed.
//!
//! - Delimiter: `,`, `;` (spreadsheets in locales whose decimal mark is a comma), tab or `|`,
//!   whichever occurs most often outside quotes in the header line; `,` on a tie.
//! - An unterminated quote swallows the rest of the file into one field. The crate accepts
//!   that silently; here it fails the import with the line the record starts on, since every
//!   product after it would be lost without a word.
//! - A UTF-8 byte-order mark is skipped; blank lines are no records; unquoted fields are taken
//!   as they are (spaces kept); rows may have fewer fields than the header (the caller decides).
//! - Streamed ([`CsvRows`]): one record in memory at a time, so a catalog of any size fits.

use std::io::{BufRead, BufReader, Read};

/// One record and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRecord {
    pub line: u64,
    pub fields: Vec<String>,
}

/// Why the file cannot be read as CSV at all (a bad record alone is the caller's to report).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("line {line}: a quoted field is never closed")]
    Unterminated { line: u64 },
    #[error("line {line}: {reason}")]
    Invalid { line: u64, reason: String },
}

/// Delimiters a catalog may use, in order of preference on a tie.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];
/// The header line is looked at this far for its delimiter.
const SNIFF_BYTES: usize = 1 << 20;

/// Opens the source again from its first byte (a file is read by three cursors at once).
pub type Open<'a> = dyn Fn() -> std::io::Result<Box<dyn Read + 'a>> + 'a;

/// Parses the whole text into records; blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<CsvRecord>, CsvError> {
    let open = || Ok(Box::new(text.as_bytes()) as Box<dyn Read>);
    CsvRows::new(&open).map_err(|e| CsvError::Invalid { line: 0, reason: e.to_string() })?.collect()
}

/// The records of a CSV source, read as a stream: memory holds one record, whatever the file's
/// size. Line numbers come from a second cursor that follows the parser's byte offsets (the
/// crate's own line numbers are those of the previous record's line break in files with `\r\n`
/// endings).
pub struct CsvRows<'a> {
    reader: ::csv::Reader<BufReader<Box<dyn Read + 'a>>>,
    lines: LineCursor<'a>,
    delimiter: u8,
    /// Where the last row (record or blank) starts, and the line of the last record.
    last: Option<(u64, u64)>,
    finished: bool,
}

impl<'a> CsvRows<'a> {
    pub fn new(open: &Open<'a>) -> std::io::Result<Self> {
        let delimiter = sniff(skip_bom(open()?)?.bytes().map_while(Result::ok).take(SNIFF_BYTES));
        let reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(skip_bom(open()?)?);
        Ok(Self { reader, lines: LineCursor::new(skip_bom(open()?)?), delimiter, last: None, finished: false })
    }

    /// The delimiter the header line uses.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }
}

impl Iterator for CsvRows<'_> {
    type Item = Result<CsvRecord, CsvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let mut row = ::csv::StringRecord::new();
        loop {
            match self.reader.read_record(&mut row) {
                Err(e) => {
                    self.finished = true;
                    let line = e.position().map_or(0, |p| self.lines.line_at(p.byte()));
                    return Some(Err(CsvError::Invalid { line, reason: e.to_string() }));
                }
                Ok(false) => {
                    self.finished = true;
                    // Only the last record can hold an unclosed quote: it runs to the end.
                    return match self.last {
                        Some((start, line)) if line > 0 && self.lines.unterminated_from(start, self.delimiter) => {
                            Some(Err(CsvError::Unterminated { line }))
                        }
                        _ => None,
                    };
                }
                Ok(true) => {}
            }
            // The crate's record start may be the line break ending the previous record (or
            // blank lines before it); the record itself starts after them.
            let mut byte = row.position().map_or(0, |p| p.byte());
            while matches!(self.lines.byte_at(byte), Some(b'\r' | b'\n')) {
                byte += 1;
            }
            let last_line = self.last.map_or(0, |l| l.1);
            self.last = Some((byte, last_line));
            // The crate gives a blank line in a `\r\n` file as one empty field; it is no record.
            if row.len() == 1 && row[0].is_empty() && self.lines.byte_at(byte) != Some(b'"') {
                continue;
            }
            let line = self.lines.line_at(byte);
            self.last = Some((byte, line));
            return Some(Ok(CsvRecord { line, fields: row.iter().map(str::to_string).collect() }));
        }
    }
}

/// A UTF-8 byte-order mark is no part of the text.
fn skip_bom<'a>(source: Box<dyn Read + 'a>) -> std::io::Result<BufReader<Box<dyn Read + 'a>>> {
    let mut reader = BufReader::new(source);
    if reader.fill_buf()?.starts_with(b"\xef\xbb\xbf") {
        reader.consume(3);
    }
    Ok(reader)
}

/// A forward-only cursor over the source that counts line breaks up to a byte offset. Offsets
/// asked for only grow (the parser's record starts), so the whole file is read once.
struct LineCursor<'a> {
    reader: BufReader<Box<dyn Read + 'a>>,
    pos: u64,
    line: u64,
}

impl<'a> LineCursor<'a> {
    fn new(reader: BufReader<Box<dyn Read + 'a>>) -> Self {
        Self { reader, pos: 0, line: 1 }
    }

    /// Moves to `byte` (or the end); a read error ends the source early, as the end would.
    fn advance(&mut self, byte: u64) {
        while self.pos < byte {
            let Ok(buf) = self.reader.fill_buf() else { return };
            if buf.is_empty() {
                return;
            }
            let n = buf.len().min(usize::try_from(byte - self.pos).unwrap_or(usize::MAX));
            self.line += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
            self.reader.consume(n);
            self.pos += n as u64;
        }
    }

    /// The line `byte` is on (for an offset behind the cursor, the cursor's line).
    fn line_at(&mut self, byte: u64) -> u64 {
        self.advance(byte);
        self.line
    }

    fn byte_at(&mut self, byte: u64) -> Option<u8> {
        self.advance(byte);
        if self.pos != byte {
            return None;
        }
        self.reader.fill_buf().ok()?.first().copied()
    }

    /// Whether the source from `start` to its end ends inside a quoted field.
    fn unterminated_from(&mut self, start: u64, delimiter: u8) -> bool {
        self.advance(start);
        unterminated((&mut self.reader).bytes().map_while(Result::ok), delimiter)
    }
}

/// The delimiter that occurs most often outside quotes in the first line (`,` on a tie).
fn sniff(bytes: impl Iterator<Item = u8>) -> u8 {
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for b in bytes {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            _ if !quoted => {
                if let Some(i) = DELIMITERS.iter().position(|d| *d == b) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    let best = counts.iter().enumerate().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0))).map_or(0, |(i, _)| i);
    if counts[best] == 0 { b',' } else { DELIMITERS[best] }
}

/// Whether a record (its bytes from its first to the end of the file) ends inside a quoted
/// field, by the rules the crate reads it with: a `"` opens a quote only at the start of a
/// field, `""` inside a quote is one `"`, and a lone `"` closes it.
fn unterminated(record: impl Iterator<Item = u8>, delimiter: u8) -> bool {
    let mut quoted = false;
    let mut field_start = true;
    let mut bytes = record.peekable();
    while let Some(b) = bytes.next() {
        if quoted {
            if b == b'"' {
                if bytes.peek() == Some(&b'"') {
                    bytes.next();
                } else {
                    quoted = false;
                }
            }
            continue;
        }
        match b {
            b'"' if field_start => quoted = true,
            b'\n' | b'\r' => field_start = true,
            _ if b == delimiter => field_start = true,
            _ => field_start = false,
        }
        if b == b'"' {
            field_start = false;
        }
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<CsvRecord> {
        parse(text).unwrap()
    }

    fn r(line: u64, fields: &[&str]) -> CsvRecord {
        CsvRecord { line, fields: fields.iter().map(|f| f.to_string()).collect() }
    }

    #[test]
    fn quoting_and_line_numbers() {
        let text = "id,title,description\r\n\
                    a,Mug,\"White, 300 ml\"\r\n\
                    \r\n\
                    b,\"Say \"\"hi\"\"\",\"two\nlines\"\n\
                    c,,\n\
                    d,last";
        assert_eq!(
            rows(text),
            [
                r(1, &["id", "title", "description"]),
                r(2, &["a", "Mug", "White, 300 ml"]),
                r(4, &["b", "Say \"hi\"", "two\nlines"]),
                r(6, &["c", "", ""]),
                r(7, &["d", "last"]),
            ]
        );
    }

    #[test]
    fn bom_unterminated_and_empty() {
        assert_eq!(rows("\u{feff}x,y\n"), [r(1, &["x", "y"])]);
        assert_eq!(parse("a,\"open\nb,c\n"), Err(CsvError::Unterminated { line: 1 }));
        assert_eq!(parse("id\na\n\"b\n\nc\n"), Err(CsvError::Unterminated { line: 3 }));
        assert!(parse("").unwrap().is_empty());
        assert!(parse("\n\n").unwrap().is_empty());
        assert_eq!(rows("\"\"\n"), [r(1, &[""])]);
        // A quote inside an unquoted field is a character, not an opening quote.
        assert_eq!(rows("id,title\na,5\" screen\n"), [r(1, &["id", "title"]), r(2, &["a", "5\" screen"])]);
        // A closed quote ending the file, escaped quotes included, is fine.
        assert_eq!(rows("id\n\"a \"\"b\"\"\""), [r(1, &["id"]), r(2, &["a \"b\""])]);
    }

    /// Spreadsheet exports: `;` where the decimal mark is a comma, tab-separated files.
    #[test]
    fn the_header_decides_the_delimiter() {
        assert_eq!(
            rows("id;title;price\na;\"Mug; white\";12,90\n"),
            [r(1, &["id", "title", "price"]), r(2, &["a", "Mug; white", "12,90"])]
        );
        assert_eq!(rows("id\ttitle\na\tMug, white\n"), [r(1, &["id", "title"]), r(2, &["a", "Mug, white"])]);
        assert_eq!(rows("id|title\na|Mug\n"), [r(1, &["id", "title"]), r(2, &["a", "Mug"])]);
        // Delimiters inside a quoted header name do not count.
        assert_eq!(sniff("\"a;b;c\",d\n".bytes()), b',');
        assert_eq!(sniff("title\n".bytes()), b',');
    }
}
