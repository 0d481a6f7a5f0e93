//! Text clean-up before CLIP's BPE, as OpenAI's tokenizer does it.
//!
//! OpenAI's `simple_tokenizer.py` (<https://github.com/openai/CLIP/blob/main/clip/simple_tokenizer.py>)
//! runs `ftfy.fix_text`, then `html.unescape` twice, collapses whitespace and lower-cases
//! (lower-casing happens in [`super::tokenizer`]). CLIP was trained on ids made that way, so
//! "don’t" must become "don't" and "&amp;" must become "&" before BPE, or the model sees tokens
//! it never saw in training. Hugging Face's `CLIPTokenizer` (transformers 5) only does NFC,
//! whitespace and lower-casing; where the two disagree ocular follows OpenAI.
//!
//! What is reproduced of `ftfy.fix_text` (ftfy 6, default configuration), per line and repeated
//! until nothing changes, in ftfy's order: HTML entities when the line has no `<`, C1 controls
//! read as Windows-1252, Latin ligatures, full-width forms, curly quotes, line breaks, ANSI
//! terminal escapes, control characters, NFC. Not reproduced: mojibake repair (`fix_encoding`:
//! "cafÃ©" stays as typed) — it needs ftfy's statistical detector and is rare in queries.
//! `html.unescape` itself is exact, on the full WHATWG entity table (`html_entities.tsv`,
//! written by `scripts/clip_tiny_reference.py` from Python's `html.entities.html5`).

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::{Captures, Regex};
use unicode_normalization::UnicodeNormalization;

/// ftfy's fixes are applied until the text stops changing; each pass only removes or
/// simplifies, so two or three passes settle any real text. The bound is a safety net.
const MAX_PASSES: usize = 8;

/// The reference clean-up: `whitespace_clean(basic_clean(text))`, without the lower-casing.
pub fn clean(text: &str) -> String {
    let fixed: String = text.split_inclusive('\n').map(fix_line).collect();
    let unescaped = html_unescape(&html_unescape(&fixed));
    let re = regexes();
    re.whitespace.replace_all(&unescaped, " ").trim().to_string()
}

struct Regexes {
    whitespace: Regex,
    ansi: Regex,
    ftfy_entity: Regex,
    charref: Regex,
}

fn regexes() -> &'static Regexes {
    static RE: OnceLock<Regexes> = OnceLock::new();
    RE.get_or_init(|| {
        let compile = |p: &str| Regex::new(p).unwrap_or_else(|e| panic!("built-in pattern {p}: {e}"));
        Regexes {
            whitespace: compile(r"\s+"),
            ansi: compile(r"\x1b\[((?:\d|;)*)([a-zA-Z])"),
            ftfy_entity: compile(r"&#?[0-9A-Za-z]{1,24};"),
            charref: compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)"),
        }
    })
}

/// `ftfy.fix_text` on one line (ftfy decides about HTML per line, on the text as given).
fn fix_line(line: &str) -> String {
    let unescape = !line.contains('<');
    let mut text = line.to_string();
    for _ in 0..MAX_PASSES {
        let mut next = if unescape { ftfy_unescape(&text) } else { text.clone() };
        next = next.chars().map(c1_as_windows_1252).collect();
        next = next.chars().flat_map(fix_char).collect();
        next = regexes().ansi.replace_all(&next, "").into_owned();
        next.retain(|c| !is_removed_control(c));
        next = next.nfc().collect();
        if next == text {
            break;
        }
        text = next;
    }
    text
}

/// Ligatures, width, quotes and line breaks: each a one-character rewrite.
fn fix_char(c: char) -> CharFix {
    let s = match c {
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'ŉ' => "ʼn",
        'Ǳ' => "DZ",
        'ǲ' => "Dz",
        'ǳ' => "dz",
        'Ǆ' => "DŽ",
        'ǅ' => "Dž",
        'ǆ' => "dž",
        'Ǉ' => "LJ",
        'ǈ' => "Lj",
        'ǉ' => "lj",
        'Ǌ' => "NJ",
        'ǋ' => "Nj",
        'ǌ' => "nj",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' => "ſt",
        'ﬆ' => "st",
        '\u{3000}' => " ",
        '\u{02bc}' | '\u{2018}'..='\u{201b}' => "'",
        '\u{201c}'..='\u{201f}' => "\"",
        '\u{2028}' | '\u{2029}' | '\u{0085}' | '\r' => "\n",
        // Half- and full-width forms: ftfy maps each to its NFKC form.
        '\u{ff01}'..='\u{ffef}' => return CharFix::Many(c.to_string().nfkc().collect::<Vec<_>>().into_iter()),
        _ => return CharFix::One(Some(c)),
    };
    CharFix::Many(s.chars().collect::<Vec<_>>().into_iter())
}

enum CharFix {
    One(Option<char>),
    Many(std::vec::IntoIter<char>),
}

impl Iterator for CharFix {
    type Item = char;
    fn next(&mut self) -> Option<char> {
        match self {
            CharFix::One(c) => c.take(),
            CharFix::Many(it) => it.next(),
        }
    }
}

/// ftfy's `remove_control_chars`: controls that are never intended in text.
fn is_removed_control(c: char) -> bool {
    matches!(c as u32, 0x00..=0x08 | 0x0b | 0x0e..=0x1f | 0x7f | 0x206a..=0x206f | 0xfeff | 0xfff9..=0xfffc)
}

/// ftfy's `fix_c1_controls`: U+0080..U+009F read as the Windows-1252 bytes they usually are
/// (the five bytes that code page leaves undefined stay as they are).
fn c1_as_windows_1252(c: char) -> char {
    const TABLE: [u32; 32] = [
        0x20ac, 0x81, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8d,
        0x017d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a,
        0x0153, 0x9d, 0x017e, 0x0178,
    ];
    match c as u32 {
        n @ 0x80..=0x9f => char::from_u32(TABLE[(n - 0x80) as usize]).unwrap_or(c),
        _ => c,
    }
}

/// Python's `html.entities.html5`: entity name (with or without `;`) to replacement text.
fn entities() -> &'static HashMap<&'static str, String> {
    static TABLE: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    TABLE.get_or_init(|| {
        include_str!("html_entities.tsv")
            .lines()
            .filter_map(|line| {
                let (name, points) = line.split_once('\t')?;
                let value = points.split(' ').map(|h| u32::from_str_radix(h, 16).ok().and_then(char::from_u32));
                Some((name, value.collect::<Option<String>>()?))
            })
            .collect()
    })
}

/// ftfy's `unescape_html`: only `&...;` forms, plus upper-cased names (`&EACUTE;` → `É`).
fn ftfy_unescape(text: &str) -> String {
    regexes()
        .ftfy_entity
        .replace_all(text, |caps: &Captures<'_>| {
            let whole = &caps[0];
            let name = &whole[1..];
            if let Some(v) = entities().get(name) {
                return v.clone();
            }
            if name.starts_with('#') {
                let unescaped = html_unescape(whole);
                return if unescaped.contains(';') { whole.to_string() } else { unescaped };
            }
            let lower = name.to_ascii_lowercase();
            let upper_variant = name == name.to_ascii_uppercase() && html_unescape(whole) == whole;
            match entities().get(lower.as_str()) {
                Some(v) if upper_variant => v.to_uppercase(),
                _ => whole.to_string(),
            }
        })
        .into_owned()
}

/// Python's `html.unescape`, rule for rule (numeric references, legacy names without `;`,
/// longest-prefix matching).
pub fn html_unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    regexes().charref.replace_all(text, |caps: &Captures<'_>| replace_charref(&caps[1])).into_owned()
}

fn replace_charref(s: &str) -> String {
    if let Some(num) = s.strip_prefix('#') {
        let num = num.trim_end_matches(';');
        let value = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => num.parse::<u64>(),
        };
        // Digits too many for u64 are far beyond U+10FFFF: the same replacement character.
        return numeric_charref(value.unwrap_or(u64::MAX));
    }
    let table = entities();
    if let Some(v) = table.get(s) {
        return v.clone();
    }
    // The longest name that is a prefix, keeping the rest (`&ampx` → `&x`); at least 2 chars.
    let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).skip(2).collect();
    for &end in bounds.iter().rev() {
        if let Some(v) = table.get(&s[..end]) {
            return format!("{v}{}", &s[end..]);
        }
    }
    format!("&{s}")
}

fn numeric_charref(num: u64) -> String {
    let invalid = match num {
        0x00 => Some('\u{fffd}'),
        0x0d => Some('\r'),
        0x80..=0x9f => Some(c1_as_windows_1252(char::from_u32(num as u32).unwrap_or('\u{fffd}'))),
        _ => None,
    };
    if let Some(c) = invalid {
        // Python keeps the five undefined Windows-1252 bytes as C1 controls; so does the table.
        return c.to_string();
    }
    if (0xd800..=0xdfff).contains(&num) || num > 0x10ffff {
        return '\u{fffd}'.to_string();
    }
    let n = num as u32;
    let removed =
        matches!(n, 0x01..=0x08 | 0x0b | 0x0e..=0x1f | 0x7f..=0x9f | 0xfdd0..=0xfdef) || (n & 0xfffe) == 0xfffe;
    if removed { String::new() } else { char::from_u32(n).map(String::from).unwrap_or_default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_html_unescape_rules() {
        assert_eq!(html_unescape("Tom &amp; Jerry"), "Tom & Jerry");
        assert_eq!(html_unescape("&amp;amp;"), "&amp;");
        assert_eq!(html_unescape("&ampx &amp"), "&x &");
        assert_eq!(html_unescape("&#39;&#x27;&#X27"), "'''");
        assert_eq!(html_unescape("&#0;&#x110000;&#1;&#128;"), "\u{fffd}\u{fffd}€");
        assert_eq!(html_unescape("&nosuch; & alone"), "&nosuch; & alone");
        assert_eq!(html_unescape("&notit; &notin;"), "¬it; ∉");
    }

    #[test]
    fn ftfy_fixes() {
        assert_eq!(clean("don’t “curly”"), "don't \"curly\"");
        assert_eq!(clean("ﬁne ＦＵＬＬ　width"), "fine FULL width");
        assert_eq!(clean("\x1b[31mred\x1b[0m\x07 \u{93}q\u{94}"), "red \"q\"");
        assert_eq!(clean("P&EACUTE;REZ &rsquo;"), "PÉREZ '");
        assert_eq!(clean("cafe\u{301}"), "café");
        assert_eq!(clean("  a \t\n b  "), "a b");
    }

    #[test]
    fn html_tags_keep_ftfy_from_unescaping_but_python_still_does() {
        // With a `<` on the line ftfy leaves `&rsquo;` alone, so the quote is not uncurled.
        assert_eq!(clean("<b> &rsquo;"), "<b> ’");
        assert_eq!(clean("<b>\n&rsquo;"), "<b> '");
    }
}
