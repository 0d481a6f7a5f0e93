//! CLIP's byte-level BPE tokenizer: text to the 77 token ids the text tower reads.
//!
//! Follows OpenAI's `simple_tokenizer.py` and `clip.tokenize(..., truncate=True)`
//! (<https://github.com/openai/CLIP/blob/main/clip/simple_tokenizer.py>): clean-up
//! ([`super::clean`]), lower-casing, the reference word-split regex (contractions, letter runs,
//! single digits, punctuation runs, the two special tokens), BPE per word with the bundled
//! OpenAI vocabulary ([`instant_clip_tokenizer`]), then `<|startoftext|>` (49406) … `<|endoftext|>`
//! (49407), truncated to the context with the end token kept.
//!
//! Words are split here rather than by the crate because its pattern differs from the
//! reference on the special tokens (`<start_of_text>` instead of `<|startoftext|>`); each word
//! the reference pattern finds is one word for the crate too, so its BPE is used per word.

use std::sync::OnceLock;

use regex::Regex;

use super::clean::clean;

/// `<|startoftext|>`.
pub const START_OF_TEXT: i64 = 49406;
/// `<|endoftext|>`; also the padding id (as Hugging Face's CLIP tokenizer pads): padded
/// positions come after the end token, which the causal text tower pools without seeing them.
pub const END_OF_TEXT: i64 = 49407;
/// The context length of every released CLIP text tower.
pub const CONTEXT_LENGTH: usize = 77;
/// BPE cost grows with the square of a word's length; a longer "word" (a pasted hash, a
/// run of one letter) is cut here. Its tokens would overflow the 77-token context anyway.
const MAX_WORD_BYTES: usize = 2048;

/// Token ids for a batch, row-major `rows x cols`, padded with [`END_OF_TEXT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    pub ids: Vec<i64>,
    /// 1 for real tokens, 0 for padding.
    pub mask: Vec<i64>,
    pub rows: usize,
    pub cols: usize,
}

pub struct ClipTokenizer {
    bpe: instant_clip_tokenizer::Tokenizer,
    words: Regex,
}

impl ClipTokenizer {
    /// Builds the tokenizer (parses the bundled 49k-merge vocabulary: tens of milliseconds).
    pub fn new() -> Self {
        let words =
            Regex::new(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+")
                .unwrap_or_else(|e| panic!("the CLIP word pattern is valid: {e}"));
        Self { bpe: instant_clip_tokenizer::Tokenizer::new(), words }
    }

    /// One tokenizer per process: it is immutable and costs a few MB.
    pub fn shared() -> &'static ClipTokenizer {
        static SHARED: OnceLock<ClipTokenizer> = OnceLock::new();
        SHARED.get_or_init(ClipTokenizer::new)
    }

    /// Start token, BPE of the cleaned text, end token: at most `context` ids (at least 2).
    pub fn encode(&self, text: &str, context: usize) -> Vec<i64> {
        let context = context.max(2);
        let text = clean(text).to_lowercase();
        let mut ids = vec![START_OF_TEXT];
        let mut tokens = Vec::new();
        for word in self.words.find_iter(&text).map(|m| m.as_str()) {
            if ids.len() >= context {
                break;
            }
            match word {
                "<|startoftext|>" => ids.push(START_OF_TEXT),
                "<|endoftext|>" => ids.push(END_OF_TEXT),
                _ => {
                    tokens.clear();
                    self.bpe.encode(truncate_word(word), &mut tokens);
                    ids.extend(tokens.iter().map(|t| i64::from(t.to_u16())));
                }
            }
        }
        ids.truncate(context - 1);
        ids.push(END_OF_TEXT);
        ids
    }

    /// Encodes `texts` into one padded batch: to the longest row, or to `pad_to` when the
    /// graph has a fixed sequence length.
    pub fn encode_batch(&self, texts: &[&str], context: usize, pad_to: Option<usize>) -> TokenBatch {
        let rows: Vec<Vec<i64>> = texts.iter().map(|t| self.encode(t, context)).collect();
        let longest = rows.iter().map(Vec::len).max().unwrap_or(2);
        let cols = pad_to.map_or(longest, |p| p.max(longest));
        let mut ids = vec![END_OF_TEXT; rows.len() * cols];
        let mut mask = vec![0; rows.len() * cols];
        for (r, row) in rows.iter().enumerate() {
            ids[r * cols..r * cols + row.len()].copy_from_slice(row);
            mask[r * cols..r * cols + row.len()].fill(1);
        }
        TokenBatch { ids, mask, rows: rows.len(), cols }
    }
}

impl Default for ClipTokenizer {
    fn default() -> Self {
        Self::new()
    }
}

fn truncate_word(word: &str) -> &str {
    if word.len() <= MAX_WORD_BYTES {
        return word;
    }
    let mut end = MAX_WORD_BYTES;
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    &word[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_md_example() {
        let ids = ClipTokenizer::shared().encode("a photo of a cat", CONTEXT_LENGTH);
        assert_eq!(ids, [49406, 320, 1125, 539, 320, 2368, 49407]);
    }

    #[test]
    fn truncation_keeps_the_end_token() {
        let ids = ClipTokenizer::shared().encode(&"cat ".repeat(200), CONTEXT_LENGTH);
        assert_eq!(ids.len(), CONTEXT_LENGTH);
        assert_eq!((ids[0], ids[75], ids[76]), (START_OF_TEXT, 2368, END_OF_TEXT));
        assert_eq!(ClipTokenizer::shared().encode("", CONTEXT_LENGTH), [START_OF_TEXT, END_OF_TEXT]);
    }

    #[test]
    fn batch_pads_after_the_end_token() {
        let b = ClipTokenizer::shared().encode_batch(&["a cat", "a photo of a cat"], CONTEXT_LENGTH, None);
        assert_eq!((b.rows, b.cols), (2, 7));
        assert_eq!(&b.ids[..7], &[49406, 320, 2368, 49407, 49407, 49407, 49407]);
        assert_eq!(&b.mask[..7], &[1, 1, 1, 1, 0, 0, 0]);
        let fixed = ClipTokenizer::shared().encode_batch(&["a cat"], CONTEXT_LENGTH, Some(77));
        assert_eq!((fixed.cols, fixed.mask.iter().sum::<i64>()), (77, 4));
    }

    #[test]
    fn a_huge_word_is_cut_not_quadratic() {
        // Uncut, BPE on this one-megabyte word would run for hours.
        let ids = ClipTokenizer::shared().encode(&"ab".repeat(500_000), CONTEXT_LENGTH);
        assert_eq!(ids.len(), CONTEXT_LENGTH);
    }
}
