//! Catalog files read as a stream of records, so an import holds one chunk of records in
//! memory whatever the file's size (issue 20: the whole file used to be read, then parsed
//! into a vector of every record).
//!
//! A [`Records`] reader yields each record's raw text first ([`Records::next_raw`]), which is
//! what counting the file and skipping to a chunk need, and maps it to a product only when
//! asked ([`Records::next`]). [`RecordCursor`] hands out the records of one chunk after another,
//! opening the file again when a chunk lies behind it (another worker took the ones between).
//!
//! - JSON Lines and `mongoexport` lines: one record per non-blank line;
//! - `mongoexport --jsonArray`: the array is cut into its elements by a scanner that tracks
//!   strings and nesting, each element parsed alone (and numbered by the line it starts on);
//!   a broken element fails alone, an array never closed fails the file;
//! - CSV through [`super::csv::CsvRows`], the first row naming the fields.

use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::csv::{CsvRows, Open};
use super::parse::{Format, Record, to_record};

/// A record before it is mapped: its JSON text, or its CSV fields.
pub enum Raw {
    Json(String),
    Row(Vec<String>),
}

/// A file that cannot be read as a catalog at all (a bad record fails alone instead).
pub type Fatal = String;

type RawItems<'a> = Box<dyn Iterator<Item = Result<(u64, Raw), Fatal>> + 'a>;

/// The records of one catalog source, in order.
pub struct Records<'a> {
    items: RawItems<'a>,
    /// CSV only: the header's lower-cased names, and whether cells use a decimal comma.
    header: Option<(Vec<String>, bool)>,
    base: PathBuf,
    /// The number the next record gets (records count from 1).
    next_number: u64,
}

impl<'a> Records<'a> {
    /// `open` gives the source from its first byte (CSV reads it with several cursors);
    /// `base` is where relative photo paths start.
    pub fn new(open: &Open<'a>, format: Format, base: &Path) -> Result<Self, Fatal> {
        let io = |e: std::io::Error| format!("cannot be read: {e}");
        let mut first = BufReader::new(open().map_err(io)?);
        let array = format == Format::Mongo && first_byte(&mut first).map_err(io)? == Some(b'[');
        let items: RawItems<'a> = match format {
            Format::Csv => {
                let rows = CsvRows::new(open).map_err(io)?;
                let semicolon = rows.delimiter() == b';';
                let mut rows = rows.map(|r| r.map(|r| (r.line, Raw::Row(r.fields))).map_err(|e| e.to_string()));
                let header = match rows.next() {
                    Some(Ok((_, Raw::Row(names)))) => {
                        Some((names.iter().map(|h| h.trim().to_ascii_lowercase()).collect(), semicolon))
                    }
                    Some(Err(e)) => return Err(e),
                    _ => None,
                };
                return Ok(Self { items: Box::new(rows), header, base: base.into(), next_number: 1 });
            }
            Format::Mongo if array => Box::new(ArrayItems { bytes: first, line: 1, started: false, done: false }),
            Format::Jsonl | Format::Mongo => Box::new(Lines { reader: first, line: 0, buf: Vec::new() }),
        };
        Ok(Self { items, header: None, base: base.into(), next_number: 1 })
    }

    /// The next record's number, line and raw text, unparsed.
    pub fn next_raw(&mut self) -> Option<Result<(u64, u64, Raw), Fatal>> {
        let item = self.items.next()?;
        Some(item.map(|(line, raw)| {
            let number = self.next_number;
            self.next_number += 1;
            (number, line, raw)
        }))
    }

    /// Counts the records left, reading to the end (fatal errors included).
    pub fn count(mut self) -> Result<u64, Fatal> {
        let mut n = 0;
        while let Some(item) = self.next_raw() {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// Maps a raw record to a product record.
    pub fn record(&self, number: u64, line: u64, raw: Raw) -> Record {
        let value = match raw {
            Raw::Json(text) => serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}")),
            Raw::Row(fields) => match &self.header {
                Some((names, comma)) => row_object(names, *comma, fields),
                None => Err("the CSV file has no header".into()),
            },
        };
        Record { number, line, parsed: value.and_then(|v| to_record(v, &self.base)) }
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Record, Fatal>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_raw()?.map(|(number, line, raw)| self.record(number, line, raw)))
    }
}

fn first_byte(reader: &mut impl BufRead) -> std::io::Result<Option<u8>> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        // Leading white space and a byte-order mark are no content.
        let skip = buf.iter().take_while(|b| b.is_ascii_whitespace() || [0xef, 0xbb, 0xbf].contains(*b)).count();
        if skip < buf.len() {
            return Ok(Some(buf[skip]));
        }
        let n = buf.len();
        reader.consume(n);
    }
}

/// A CSV row as a JSON object keyed by the header; empty cells are absent.
fn row_object(names: &[String], decimal_comma: bool, fields: Vec<String>) -> Result<Value, String> {
    if fields.len() > names.len() {
        return Err(format!("{} fields, but the header names {}", fields.len(), names.len()));
    }
    let mut obj = Map::new();
    for (name, cell) in names.iter().zip(fields) {
        if cell.trim().is_empty() {
            continue;
        }
        let value = match name.as_str() {
            "attributes" => serde_json::from_str(&cell).map_err(|e| format!("attributes is not JSON: {e}"))?,
            "price" if decimal_comma => Value::String(decimal_point(&cell)),
            _ => Value::String(cell),
        };
        obj.insert(name.clone(), value);
    }
    Ok(Value::Object(obj))
}

/// A price written with a decimal comma (`19,99`, `1.234,56`) in a `;`-separated file, as
/// spreadsheets save them where the comma is the decimal mark, with the point instead. Only a
/// price holding a comma changes: its points are thousands separators then. One without a
/// comma (`19.99`) is read as before, so a file that uses points keeps working.
pub fn decimal_point(cell: &str) -> String {
    let t = cell.trim();
    if !t.contains(',') || t.matches(',').count() > 1 {
        return cell.to_string();
    }
    let (int, frac) = t.split_once(',').unwrap_or((t, ""));
    let digits = int.strip_prefix('-').unwrap_or(int);
    // Points only as thousands separators: groups of three digits after the first.
    let mut groups = digits.split('.');
    let head_ok = groups.next().is_some_and(|g| (1..=3).contains(&g.len()) || !digits.contains('.'));
    let grouped = head_ok && groups.all(|g| g.len() == 3);
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !grouped || !numeric(&digits.replace('.', "")) || !numeric(frac) {
        return cell.to_string();
    }
    format!("{}.{frac}", int.replace('.', ""))
}

/// JSON Lines: one record per non-blank line.
struct Lines<R> {
    reader: R,
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = Result<(u64, Raw), Fatal>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(format!("cannot be read: {e}"))),
            }
            self.line += 1;
            let mut bytes = self.buf.as_slice();
            if self.line == 1 {
                bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
            }
            let Ok(text) = std::str::from_utf8(bytes) else {
                return Some(Err(format!("line {}: not UTF-8 text", self.line)));
            };
            let text = text.trim();
            if !text.is_empty() {
                return Some(Ok((self.line, Raw::Json(text.to_string()))));
            }
        }
    }
}

/// `mongoexport --jsonArray`: the elements of one JSON array, cut apart without parsing them.
struct ArrayItems<R> {
    bytes: R,
    line: u64,
    started: bool,
    done: bool,
}

impl<R: BufRead> ArrayItems<R> {
    fn byte(&mut self) -> Result<Option<u8>, Fatal> {
        let buf = self.bytes.fill_buf().map_err(|e| format!("cannot be read: {e}"))?;
        let Some(&b) = buf.first() else { return Ok(None) };
        self.bytes.consume(1);
        if b == b'\n' {
            self.line += 1;
        }
        Ok(Some(b))
    }
}

impl<R: BufRead> Iterator for ArrayItems<R> {
    type Item = Result<(u64, Raw), Fatal>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let never_closed = || Some(Err("the JSON array is never closed".to_string()));
        if !self.started {
            self.started = true;
            // `Records::new` saw `[` as the first byte of content.
            loop {
                match self.byte() {
                    Ok(Some(b'[')) => break,
                    Ok(Some(_)) => {}
                    Ok(None) => return never_closed(),
                    Err(e) => return Some(Err(e)),
                }
            }
        }
        let mut item = Vec::new();
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        let mut start = None;
        loop {
            let b = match self.byte() {
                Ok(Some(b)) => b,
                Ok(None) => {
                    self.done = true;
                    return never_closed();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            if in_string {
                item.push(b);
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            if start.is_none() && !b.is_ascii_whitespace() && !(depth == 0 && matches!(b, b',' | b']')) {
                start = Some(self.line);
            }
            match b {
                b']' | b',' if depth == 0 => {
                    if b == b']' {
                        self.done = true;
                    }
                    match start {
                        Some(line) => {
                            let text = String::from_utf8(item).map_err(|_| format!("line {line}: not UTF-8 text"));
                            return Some(text.map(|t| (line, Raw::Json(t))));
                        }
                        // `[]`, or a stray comma: no element.
                        None if b == b']' => return None,
                        None => continue,
                    }
                }
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
            item.push(b);
        }
    }
}

/// Hands out the records of one chunk after another from a file (see the module docs).
pub struct RecordCursor {
    path: PathBuf,
    format: Format,
    records: Records<'static>,
}

impl RecordCursor {
    pub fn open(path: &Path, format: Format) -> Result<Self, Fatal> {
        Ok(Self { path: path.into(), format, records: open_file(path, format)? })
    }

    /// The records numbered `numbers` (fewer at the end of the file), mapped to products.
    pub fn take(&mut self, numbers: Range<u64>) -> Result<Vec<Record>, Fatal> {
        if numbers.start < self.records.next_number {
            self.records = open_file(&self.path, self.format)?;
        }
        let mut out = Vec::with_capacity(usize::try_from(numbers.end - numbers.start).unwrap_or(0).min(4096));
        while self.records.next_number < numbers.end {
            let Some(item) = self.records.next_raw() else { break };
            let (number, line, raw) = item?;
            if number >= numbers.start {
                out.push(self.records.record(number, line, raw));
            }
        }
        Ok(out)
    }
}

/// The records of the catalog file at `path`.
pub fn open_file(path: &Path, format: Format) -> Result<Records<'static>, Fatal> {
    let owned = path.to_path_buf();
    let open = move || std::fs::File::open(&owned).map(|f| Box::new(f) as Box<dyn Read>);
    Records::new(&open, format, path.parent().unwrap_or(Path::new(".")))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn records(text: &str, format: Format) -> Vec<Record> {
        super::super::parse::parse(text, format, Path::new("/c")).unwrap()
    }

    /// Issue 20: `;`-separated exports from comma-decimal locales.
    #[test]
    fn decimal_comma_prices_in_semicolon_files() {
        let text = "id;title;price\na;Mug;19,99\nb;Lamp;1.234,50\nc;Cup;7.5\nd;Odd;1,2,3\ne;Bad;12.34,5\n";
        let r = records(text, Format::Csv);
        let price = |i: usize| r[i].parsed.as_ref().map(|p| p.product.price);
        assert_eq!(price(0), Ok(Some(19.99)));
        assert_eq!(price(1), Ok(Some(1234.5)));
        assert_eq!(price(2), Ok(Some(7.5)), "a point without a comma stays a decimal point");
        assert!(price(3).unwrap_err().contains("price"), "two commas are no number");
        assert!(price(4).unwrap_err().contains("price"), "points not in thousands groups");
        // In a `,`-separated file a quoted "19,99" is ambiguous and stays an error.
        let r = records("id,title,price\na,Mug,\"19,99\"\n", Format::Csv);
        assert!(r[0].parsed.as_ref().unwrap_err().contains("price"));
        assert_eq!(decimal_point("-0,5"), "-0.5");
        assert_eq!(decimal_point("12"), "12");
    }

    #[test]
    fn array_elements_carry_their_lines_and_fail_alone() {
        let text = "[\n {\"id\":\"a\",\"title\":\"x, [y]\"},\n {\"id\":\"b\",\"title\":\"q\\\"}\"}, {broken},\n{\"id\":\"c\",\"title\":\"z\"}\n]\n";
        let r = records(text, Format::Mongo);
        assert_eq!(r.iter().map(|r| (r.number, r.line)).collect::<Vec<_>>(), [(1, 2), (2, 3), (3, 3), (4, 4)]);
        assert_eq!(r[0].parsed.as_ref().unwrap().product.title, "x, [y]");
        assert_eq!(r[1].parsed.as_ref().unwrap().product.title, "q\"}");
        assert!(r[2].parsed.as_ref().unwrap_err().contains("invalid JSON"));
        assert!(records("[]", Format::Mongo).is_empty());
        assert!(records(" \u{feff}[ ]", Format::Mongo).is_empty());
    }

    /// Chunks are taken in any order from a file; one behind the cursor reopens the file.
    #[test]
    fn a_cursor_hands_out_chunks_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let mut f = std::fs::File::create(&path).unwrap();
        for i in 1..=10 {
            writeln!(f, "{{\"id\":\"p{i}\",\"title\":\"t\"}}\n").unwrap();
        }
        drop(f);
        assert_eq!(open_file(&path, Format::Jsonl).unwrap().count(), Ok(10));
        let mut cursor = RecordCursor::open(&path, Format::Jsonl).unwrap();
        let ids = |v: Vec<Record>| v.into_iter().map(|r| (r.line, r.parsed.unwrap().product.id)).collect::<Vec<_>>();
        assert_eq!(ids(cursor.take(5..7).unwrap()), [(9, "p5".into()), (11, "p6".into())]);
        assert_eq!(ids(cursor.take(1..3).unwrap()), [(1, "p1".into()), (3, "p2".into())]);
        assert_eq!(ids(cursor.take(9..13).unwrap()), [(17, "p9".into()), (19, "p10".into())]);
        assert!(cursor.take(11..12).unwrap().is_empty());
    }

    #[test]
    fn fatal_errors_fail_the_file() {
        let open = |t: &'static [u8]| move || Ok(Box::new(t) as Box<dyn Read>);
        let count = |t: &'static [u8], f| Records::new(&open(t), f, Path::new("/")).and_then(Records::count);
        assert!(count(b"{\"id\":1}\n\xff\xfe\n", Format::Jsonl).unwrap_err().contains("line 2: not UTF-8"));
        assert!(count(b"[{\"id\":1}", Format::Mongo).unwrap_err().contains("never closed"));
        assert!(count(b"id,title\na,\"open\n", Format::Csv).unwrap_err().contains("never closed"));
        assert_eq!(count(b"\xef\xbb\xbf{\"id\":1}\n\n", Format::Jsonl), Ok(1));
    }
}
