//! The storage conformance suite: every case is a function taking `&dyn Store` (a fresh,
//! migrated, empty store), so the same cases run unchanged against SQLite and, later,
//! PostgreSQL. `conformance_tests!` turns the list of cases into one `#[test]` per case for a
//! backend; a new backend needs only a fixture and one macro call.

pub mod analyses;
pub mod concurrency;
pub mod embeddings;
pub mod imports;
pub mod lifecycle;
pub mod photos;
pub mod products;
pub mod search;

use ocular_store::{Embedding, NewProduct, Store};
use serde_json::json;

/// A product with a title, a description, a category and a price.
pub fn product(id: &str, title: &str, description: &str, category: Option<&str>, price: Option<f64>) -> NewProduct {
    NewProduct {
        description: description.into(),
        category: category.map(Into::into),
        price,
        currency: price.map(|_| "EUR".into()),
        attributes: json!({"source": "conformance"}),
        ..NewProduct::new(id, title)
    }
}

/// A deterministic pseudo-random vector (xorshift), different for every seed.
pub fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dim)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// An image (1280-d) and a text (384-d) embedding, as the product search stores them.
pub fn pair(seed: u64) -> Vec<Embedding> {
    vec![
        Embedding::new("image", "effnet-lite0@1", vector(seed, 1280)),
        Embedding::new("text", "minilm@1", vector(seed + 7, 384)),
    ]
}

pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A store handle as a case sees it.
pub type Dyn<'a> = &'a dyn Store;

/// Expands to one `#[test]` per conformance case, each on a fresh store from `$open`, an
/// expression whose value derefs to `dyn Store` (and keeps any temporary files alive).
macro_rules! conformance_tests {
    ($open:expr) => {
        conformance_tests!(@cases $open;
            products::crud_round_trip,
            products::create_conflicts,
            products::put_creates_then_replaces,
            products::patch_merges,
            products::invalid_input_writes_nothing,
            products::delete_cascades_and_keys_are_never_reused,
            products::pagination_has_no_duplicates_or_gaps,
            products::filters,
            products::attribute_filters,
            products::attribute_paths_and_arrays,
            products::category_counts,
            products::images_are_content_addressed,
            lifecycle::photos_go_with_their_last_product,
            lifecycle::conditional_replace_refuses_a_stale_version,
            lifecycle::expired_analyses_go_and_recent_ones_stay,
            photos::several_photos_round_trip,
            photos::photo_input_is_checked,
            photos::further_photos_go_with_their_product,
            embeddings::vectors_round_trip_bit_exact,
            embeddings::keep_merge_replace,
            embeddings::dimension_mismatch_writes_nothing,
            embeddings::batch_reports_bad_items_and_writes_the_rest,
            embeddings::model_census,
            embeddings::streaming_visitor,
            embeddings::products_needing_embeddings,
            search::ranking,
            search::hostile_queries_are_never_errors,
            search::filters_and_index_maintenance,
            search::english_words,
            analyses::crud_and_images,
            analyses::attach_images_later,
            analyses::access_tokens,
            analyses::newest_first_pagination,
            analyses::retention,
            imports::resume_by_digest,
            imports::claims_leases_and_completion,
            imports::line_outcomes,
            concurrency::threads_share_a_store,
        );
    };
    (@cases $open:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let store = $open;
                $crate::conformance::$module::$case(&*store);
            }
        )*
    };
}
pub(crate) use conformance_tests;
