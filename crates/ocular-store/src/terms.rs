//! Splitting a stranger's text query into search terms, shared by both full-text backends.
//!
//! A term holds only letters and digits, so it can carry no FTS5 or tsquery operator and no
//! NUL: each backend quotes or joins terms without any escaping rules of its own to get wrong.
//!
//! English stop words ([`STOP_WORDS`]) are left out of queries on both backends: "a kitten"
//! once ranked first a product whose title held the one-letter word "A" (issue 19). Products
//! are indexed with English stemming (FTS5's `porter` tokenizer, PostgreSQL's `english`
//! configuration, migration 7), so "cups" finds "cup".

/// More words than this add nothing to ranking and only cost time.
pub(crate) const MAX_TERMS: usize = 32;

/// PostgreSQL's `english` stop-word list (itself Snowball's), so that both backends drop the
/// same words: PostgreSQL would drop them anyway, SQLite's FTS5 has no list of its own.
pub const STOP_WORDS: [&str; 127] = [
    "i",
    "me",
    "my",
    "myself",
    "we",
    "our",
    "ours",
    "ourselves",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "he",
    "him",
    "his",
    "himself",
    "she",
    "her",
    "hers",
    "herself",
    "it",
    "its",
    "itself",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
    "what",
    "which",
    "who",
    "whom",
    "this",
    "that",
    "these",
    "those",
    "am",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "have",
    "has",
    "had",
    "having",
    "do",
    "does",
    "did",
    "doing",
    "a",
    "an",
    "the",
    "and",
    "but",
    "if",
    "or",
    "because",
    "as",
    "until",
    "while",
    "of",
    "at",
    "by",
    "for",
    "with",
    "about",
    "against",
    "between",
    "into",
    "through",
    "during",
    "before",
    "after",
    "above",
    "below",
    "to",
    "from",
    "up",
    "down",
    "in",
    "out",
    "on",
    "off",
    "over",
    "under",
    "again",
    "further",
    "then",
    "once",
    "here",
    "there",
    "when",
    "where",
    "why",
    "how",
    "all",
    "any",
    "both",
    "each",
    "few",
    "more",
    "most",
    "other",
    "some",
    "such",
    "no",
    "nor",
    "not",
    "only",
    "own",
    "same",
    "so",
    "than",
    "too",
    "very",
    "s",
    "t",
    "can",
    "will",
    "just",
    "don",
    "should",
    "now",
];

/// The words of a query that full-text search looks for: [`terms`] without [`STOP_WORDS`].
/// A query of stop words only ("the who") has none, and matches nothing by keyword; the
/// embeddings still search it.
pub(crate) fn keyword_terms(query: &str) -> Vec<String> {
    let mut words = terms(query);
    words.retain(|w| !STOP_WORDS.contains(&w.as_str()));
    words
}

/// The distinct words of a user's query, lower-cased, in order, at most [`MAX_TERMS`].
///
/// Splitting on what FTS5's unicode61 tokenizer treats as separators keeps one user word one
/// term; were the split to differ, a quoted string holding two tokens is still valid syntax (a
/// phrase), so the difference can cost recall but never an error.
pub(crate) fn terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let word = word.to_lowercase();
        if !terms.contains(&word) {
            terms.push(word);
        }
        if terms.len() == MAX_TERMS {
            break;
        }
    }
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_left_out() {
        assert_eq!(keyword_terms("A kitten on the sofa"), ["kitten", "sofa"]);
        assert_eq!(keyword_terms("THE WHO"), Vec::<String>::new());
        assert_eq!(keyword_terms("Plan B"), ["plan", "b"]);
        let mut sorted = STOP_WORDS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), STOP_WORDS.len(), "no duplicates");
    }
}
