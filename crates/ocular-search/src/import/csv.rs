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

/// Parses the whole text into records; blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<CsvRecord>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let delimiter = sniff_delimiter(text);
    let mut reader =
        ::csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(text.as_bytes());
    let mut records = Vec::new();
    let mut last_start = 0;
    // Lines are counted here from byte offsets: the crate's own line numbers are those of the
    // previous record's line break in files with `\r\n` endings.
    let mut counted = (0usize, 1u64);
    let mut line_of = |byte: u64| {
        let byte = usize::try_from(byte).unwrap_or(usize::MAX).min(text.len());
        if byte >= counted.0 {
            let newlines = text.as_bytes()[counted.0..byte].iter().filter(|b| **b == b'\n').count();
            counted = (byte, counted.1 + newlines as u64);
        }
        counted.1
    };
    for row in reader.records() {
        let row = row.map_err(|e| {
            let line = e.position().map_or(0, |p| line_of(p.byte()));
            CsvError::Invalid { line, reason: e.to_string() }
        })?;
        // The crate's record start may be the line break ending the previous record (or blank
        // lines before it); the record itself starts after them.
        let mut byte = row.position().map_or(0, |p| p.byte());
        while matches!(usize::try_from(byte).ok().and_then(|b| text.as_bytes().get(b)), Some(b'\r' | b'\n')) {
            byte += 1;
        }
        last_start = byte;
        // The crate gives a blank line in a `\r\n` file as one empty field; it is no record.
        if row.len() == 1 && row[0].is_empty() && !starts_quoted(text, byte) {
            continue;
        }
        records.push(CsvRecord { line: line_of(byte), fields: row.iter().map(str::to_string).collect() });
    }
    // Only the last record can hold an unclosed quote: it runs to the end of the file.
    if let Some(last) = records.last()
        && unterminated(text.get(usize::try_from(last_start).unwrap_or(usize::MAX)..).unwrap_or(""), delimiter)
    {
        return Err(CsvError::Unterminated { line: last.line });
    }
    Ok(records)
}

/// The delimiter that occurs most often outside quotes in the first line (`,` on a tie).
fn sniff_delimiter(text: &str) -> u8 {
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for b in text.bytes() {
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

fn starts_quoted(text: &str, byte: u64) -> bool {
    usize::try_from(byte).ok().and_then(|b| text.as_bytes().get(b)) == Some(&b'"')
}

/// Whether `record` (from its first byte to the end of the file) ends inside a quoted field,
/// by the rules the crate reads it with: a `"` opens a quote only at the start of a field,
/// `""` inside a quote is one `"`, and a lone `"` closes it.
fn unterminated(record: &str, delimiter: u8) -> bool {
    let mut quoted = false;
    let mut field_start = true;
    let mut bytes = record.bytes().peekable();
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
        assert_eq!(sniff_delimiter("\"a;b;c\",d\n"), b',');
        assert_eq!(sniff_delimiter("title\n"), b',');
    }
}
