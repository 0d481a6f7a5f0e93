//! Full-text search: SQLite FTS5 over title, description and category, ranked by BM25.
//!
//! English: the `porter` tokenizer stems both the indexed text and the query ("cups" finds
//! "cup"), and stop words never reach the query ([`crate::terms::keyword_terms`]).
//!
//! Queries come from strangers, and FTS5's query language has operators (`AND`, `NEAR(`, `*`,
//! `^`, column filters, quotes) that fail on unbalanced input. So no user text ever reaches FTS5
//! as syntax: the query is cut into words, each word becomes a quoted string (an FTS5 string
//! can contain anything, with `"` doubled), and the words are joined with `OR`. BM25 then ranks
//! a product matching more, and rarer, words higher; the column weights make a word in the
//! title count more than one in the description.
//!
//! Cost is one BM25 evaluation per matching product, so a word found in most products ("a",
//! "with") would make every query scan the catalog. FTS5 gives such a word no weight at all: its
//! BM25 IDF, `ln((N - n + 0.5) / (n + 0.5))` for a word in `n` of `N` products, is zero or less
//! once `n >= N/2`, and FTS5 then uses 1e-6. Dropping those words from the query therefore keeps
//! the ranking (up to that 1e-6) and removes only matches that scored nothing, at the price of a
//! document-count lookup per word in `products_fts_vocab`.

use crate::terms::keyword_terms;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension};

use super::products::filter_sql;
use super::{product_key, sql_count};
use crate::StoreError;
use crate::types::{ProductFilter, TextHit, clamp_limit};

/// BM25 weights, in the column order of `products_fts`: title, description, category.
const WEIGHTS: (f64, f64, f64) = (4.0, 1.0, 2.0);

/// The FTS5 expression matching any of `terms`, or `None` without terms.
pub(super) fn match_expression(terms: &[String]) -> Option<String> {
    let quoted: Vec<String> = terms.iter().map(|t| format!("\"{}\"", t.replace('"', "\"\""))).collect();
    (!quoted.is_empty()).then(|| quoted.join(" OR "))
}

/// Drops the terms BM25 gives no weight (found in half the products or more), keeping the
/// rarest one if all are that common.
fn drop_weightless(c: &Connection, terms: Vec<String>) -> Result<Vec<String>, StoreError> {
    if terms.len() < 2 {
        return Ok(terms);
    }
    let total: i64 = c.prepare_cached("SELECT count(*) FROM products")?.query_row([], |r| r.get(0))?;
    let mut lookup = c.prepare_cached("SELECT doc FROM products_fts_vocab WHERE term = ?1")?;
    let mut counted = Vec::with_capacity(terms.len());
    for t in terms {
        // A word absent from the vocabulary (or spelled differently there: accents the
        // tokenizer folds, endings the porter stemmer removes) counts as rare: it is kept,
        // which is always safe.
        let docs: i64 = lookup.query_row([&t], |r| r.get(0)).optional()?.unwrap_or(0);
        counted.push((t, docs));
    }
    let rarest = counted.iter().min_by_key(|(_, docs)| *docs).map(|(t, _)| t.clone());
    let kept: Vec<String> = counted.into_iter().filter(|(_, docs)| 2 * docs < total).map(|(t, _)| t).collect();
    Ok(if kept.is_empty() { rarest.into_iter().collect() } else { kept })
}

pub(super) fn search(
    c: &Connection,
    query: &str,
    filter: &ProductFilter,
    limit: usize,
) -> Result<Vec<TextHit>, StoreError> {
    let (cond, filter_args) = filter_sql(filter)?;
    let Some(expr) = match_expression(&drop_weightless(c, keyword_terms(query))?) else { return Ok(Vec::new()) };
    let (wt, wd, wc) = WEIGHTS;
    let mut args = vec![SqlValue::Text(expr)];
    args.extend(filter_args);
    args.push(SqlValue::Integer(sql_count(clamp_limit(limit))));
    // Join the products only to filter: SQLite filters before it evaluates bm25(), so a filter
    // makes the query cheaper, and without one the join would be pure cost. CROSS JOIN keeps the
    // full-text match as the outer loop: driven from a filter index instead, SQLite would re-run
    // the whole match once per product passing the filter (measured: 20 ms became 340 ms).
    let join = if cond.is_empty() { "" } else { "CROSS JOIN products p ON p.seq = products_fts.rowid" };
    // bm25() is smaller for better matches; ties fall back to key order so results are stable.
    let mut stmt = c.prepare_cached(&format!(
        "SELECT products_fts.rowid, bm25(products_fts, {wt:.1}, {wd:.1}, {wc:.1}) AS rank
         FROM products_fts {join}
         WHERE products_fts MATCH ?{cond}
         ORDER BY rank, products_fts.rowid LIMIT ?"
    ))?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let rank: f64 = row.get(1)?;
        out.push(TextHit { key: product_key(row.get(0)?)?, score: -rank });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terms::{MAX_TERMS, terms};

    fn expr(q: &str) -> Option<String> {
        match_expression(&terms(q))
    }

    #[test]
    fn expressions_quote_every_word() {
        assert_eq!(expr("a cup of coffee").unwrap(), r#""a" OR "cup" OR "of" OR "coffee""#);
        assert_eq!(expr(r#"NEAR(red "shoe*"#).unwrap(), r#""near" OR "red" OR "shoe""#);
        assert_eq!(expr("Café CAFÉ café").unwrap(), r#""café""#);
        assert_eq!(expr("  \"*^:() -+ "), None);
        assert_eq!(expr(""), None);
        let many: String = (0..100).map(|i| format!("w{i} ")).collect();
        assert_eq!(expr(&many).unwrap().matches(" OR ").count(), MAX_TERMS - 1);
        // Quoting is what keeps a term inert even if one ever held a quote.
        assert_eq!(match_expression(&["a\"b".to_string()]).unwrap(), r#""a""b""#);
    }

    #[test]
    fn weightless_words_are_dropped() {
        let store = super::super::SqliteStore::in_memory().unwrap();
        crate::Store::migrate(&store).unwrap();
        store
            .with(|c| {
                for (i, text) in
                    ["a red cup", "a blue cup", "a red cup", "a green bowl", "the plate"].iter().enumerate()
                {
                    c.execute(
                        "INSERT INTO products (id, title, created_at, updated_at) VALUES (?1, ?2, 0, 0)",
                        (format!("p{i}"), text),
                    )?;
                }
                let t = |q: &str| drop_weightless(c, terms(q));
                // Of 5 products, "a" is in 4 and "cup" in 3: no weight. "red" (2) and "the" (1) keep it.
                assert_eq!(t("a red cup")?, ["red"]);
                assert_eq!(t("a the")?, ["the"]);
                assert_eq!(t("a cup")?, ["cup"], "all weightless: the rarest stays");
                assert_eq!(t("a")?, ["a"], "a single word is never dropped");
                assert_eq!(t("a unknownword")?, ["unknownword"]);
                Ok(())
            })
            .unwrap();
    }
}
