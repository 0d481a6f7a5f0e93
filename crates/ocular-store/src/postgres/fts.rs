//! Full-text search on PostgreSQL: the generated `products.search` tsvector (GIN-indexed),
//! ranked by `ts_rank_cd`.
//!
//! Queries come from strangers, so no user text reaches a tsquery parser as syntax: the query is
//! cut into words (runs of letters and digits, as on SQLite), and each word becomes
//! `plainto_tsquery('english', ocular_fold(word))` — a function that never fails on any text —
//! OR-ed together with `||`. Operators (`&`, `!`, `<->`, `:*`, quotes, `-`, `or`) are therefore
//! only ever letters or separators; `websearch_to_tsquery` is not used because it gives `-` and
//! `or` meaning ("-coffee" would exclude coffee).
//!
//! Ranking: `ts_rank_cd` with weights title 1.0, category 0.5, description 0.25 (A/B/C in the
//! tsvector), the ratios of SQLite's BM25 column weights. With an OR query every matched
//! occurrence is a cover, so a product matching more words, and in its title, ranks higher.
//! Unlike BM25 it has no notion of word rarity; scores are for ordering within one backend, as
//! `TextHit` says. Accents are folded on both sides by `ocular_fold` (see the migration).
//!
//! English: the `english` configuration stems both the indexed text (migration 7) and the
//! query words, and stop words never reach the query ([`crate::terms::keyword_terms`]; the
//! configuration would drop them too).

use super::pool::Db;
use super::products::{Args, filter_sql};
use super::{product_key, sql_count};
use crate::StoreError;
use crate::terms::keyword_terms;
use crate::types::{ProductFilter, TextHit, clamp_limit};

/// `ts_rank_cd` weights in its order {D, C, B, A}: unused, description, category, title.
const WEIGHTS: &str = "'{0.1, 0.25, 0.5, 1.0}'::float4[]";

pub(super) fn search(
    db: Db<'_>,
    query: &str,
    filter: &ProductFilter,
    limit: usize,
) -> Result<Vec<TextHit>, StoreError> {
    let mut args = Args::default();
    let cond = filter_sql(filter, &mut args)?;
    let words = keyword_terms(query);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let tsquery: Vec<String> =
        words.into_iter().map(|w| format!("plainto_tsquery('english', ocular_fold({}))", args.push(w))).collect();
    let tsquery = tsquery.join(" || ");
    let limit = args.push(sql_count(clamp_limit(limit)));
    // The tsquery is computed once (a one-row subquery), and ties fall back to key order so
    // results are stable. `ts_rank_cd` runs only on rows the GIN index matched and the filter kept.
    let rows = db.query(
        &format!(
            "SELECT p.seq, ts_rank_cd({WEIGHTS}, p.search, q.query)::float8 AS rank
             FROM products p, (SELECT {tsquery} AS query) q
             WHERE p.search @@ q.query{cond}
             ORDER BY rank DESC, p.seq LIMIT {limit}"
        ),
        &args.refs(),
    )?;
    rows.iter().map(|r| Ok(TextHit { key: product_key(r.try_get(0)?)?, score: r.try_get(1)? })).collect()
}

#[cfg(test)]
mod tests {
    use crate::terms::{MAX_TERMS, terms};

    #[test]
    fn words_carry_no_syntax() {
        assert_eq!(terms("a cup of coffee"), ["a", "cup", "of", "coffee"]);
        assert_eq!(terms("-coffee & !tea <-> 'x':* \"y\" or\0z"), ["coffee", "tea", "x", "y", "or", "z"]);
        assert_eq!(terms("Café CAFÉ café"), ["café"]);
        assert!(terms("  \"*^:() -+ ☕ ").is_empty());
        let many: String = (0..100).map(|i| format!("w{i} ")).collect();
        assert_eq!(terms(&many).len(), MAX_TERMS);
    }
}
