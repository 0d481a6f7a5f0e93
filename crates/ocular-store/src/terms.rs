//! Splitting a stranger's text query into search terms, shared by both full-text backends.
//!
//! A term holds only letters and digits, so it can carry no FTS5 or tsquery operator and no
//! NUL: each backend quotes or joins terms without any escaping rules of its own to get wrong.

/// More words than this add nothing to ranking and only cost time.
pub(crate) const MAX_TERMS: usize = 32;

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
