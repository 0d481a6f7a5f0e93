//! A small RFC 4180 CSV reader: the catalog import needs quoted fields (descriptions contain
//! commas, quotes and line breaks), a header row, and the line each record starts on for error
//! messages; nothing more.
//!
//! Rules: fields are separated by `,`; records by `\n` or `\r\n`; a field starting with `"` is
//! quoted, may contain separators and line breaks, and writes `"` as `""`. A UTF-8 byte-order
//! mark is skipped. Unquoted fields are taken as they are (spaces kept).

/// One record and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRecord {
    pub line: u64,
    pub fields: Vec<String>,
}

/// A malformed file (only an unterminated quote is fatal: it swallows the rest of the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: a quoted field is never closed")]
pub struct CsvError {
    pub line: u64,
}

/// Parses the whole text into records; blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<CsvRecord>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line: u64 = 1;
    let mut start = 1;
    let mut quoted = false;
    // Whether the current line has begun a record (so `x,` ends with an empty field and a
    // blank line is no record at all).
    let mut in_record = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                quoted = true;
                in_record = true;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                in_record = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if in_record || !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                    records.push(CsvRecord { line: start, fields: std::mem::take(&mut fields) });
                }
                in_record = false;
                line += 1;
                start = line;
            }
            _ => {
                field.push(c);
                in_record = true;
            }
        }
    }
    if quoted {
        return Err(CsvError { line: start });
    }
    if in_record || !field.is_empty() {
        fields.push(field);
        records.push(CsvRecord { line: start, fields });
    }
    Ok(records)
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
        assert_eq!(parse("a,\"open\nb,c\n"), Err(CsvError { line: 1 }));
        assert!(parse("").unwrap().is_empty());
        assert!(parse("\n\n").unwrap().is_empty());
        assert_eq!(rows("\"\"\n"), [r(1, &[""])]);
    }
}
