//! Several photos per product in one index: the photo-id scheme and best-photo folding.
//!
//! A product may have up to [`MAX_PHOTOS`] photos, each with its own vector in a photo space.
//! The vector indexes know nothing of products: they hold `u64` ids. A space's index therefore
//! holds one entry per (product, photo), under an id made of both ([`index_id`]), and a search
//! folds the hits of one product into its best photo: a product's score is the largest cosine
//! over its photos, and the hit says which photo it was. The text space uses the same scheme
//! with photo 0 only, so every space is handled alike. The mapping is arithmetic, not a table:
//! no memory per photo beyond the index entry itself (and in the compact index about 10 B of
//! overflow map per further photo; a catalog of one photo per product costs what it did
//! before several photos existed).
//!
//! Folding needs more rows than results: with at most `m` photos per product in a space,
//! `k·m` nearest rows always hold at least `k` products (or every product there is). `m` is the
//! most photos any product of the space has had since the index loaded (see
//! [`Photos`]): a catalog of one photo per product asks for exactly `k` rows, as before.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, Ordering};

use ocular_index::Hit;
pub use ocular_store::MAX_PHOTOS;

/// Bits of an index id that hold the photo number (at the top of the id's range).
pub const PHOTO_BITS: u32 = 4;
const _: () = assert!(MAX_PHOTOS <= 1 << PHOTO_BITS);
const PHOTO: u64 = (1 << PHOTO_BITS) - 1;

/// Keys below this (268 million) take the compact index's ids, all below 2³²: photo 0's id is
/// the key itself, photo `p`'s is `key | p << 28`.
const SMALL_KEYS: u64 = 1 << 28;
/// Where the ids of larger keys start: `BIG + (key | p << 59)`, above anything the compact
/// index accepts (it refuses them, as it refused such keys before photos), fine for int8.
const BIG: u64 = 1 << 32;
const BIG_PHOTO_SHIFT: u32 = 59;
/// The largest key with an index id of its own.
pub const MAX_KEY: u64 = (1 << BIG_PHOTO_SHIFT) - 1;

/// The index id of photo `photo` of the product with store key `key` (at most [`MAX_KEY`]).
///
/// Photo 0's id is the key: a catalog of one photo per product has the ids, the shards
/// (`id % shards`, `crate::sharded`: keys count up, so every shard gets its share) and the
/// memory it had before several photos per product. Further photos go high (`key | p << 28`),
/// where the compact index keeps them in a map sized by the photos there are rather than in
/// its dense table, which covers the ids below 2²⁸ (`ocular_index::CompactConfig::dense_ids_below`).
/// A further photo may land in another shard than photo 0 (2²⁸ is not a multiple of 3); each id
/// always goes to the same shard, and removals name every photo's id.
pub fn index_id(key: u64, photo: u16) -> u64 {
    debug_assert!(key <= MAX_KEY, "key {key} above MAX_KEY");
    let photo = u64::from(photo) & PHOTO;
    if key < SMALL_KEYS { key | photo << 28 } else { BIG + ((key & MAX_KEY) | photo << BIG_PHOTO_SHIFT) }
}

/// The product key of an index id.
pub fn key_of(id: u64) -> u64 {
    if id < BIG { id & (SMALL_KEYS - 1) } else { (id - BIG) & MAX_KEY }
}

/// The photo number of an index id.
pub fn photo_of(id: u64) -> u16 {
    (if id < BIG { id >> 28 } else { (id - BIG) >> BIG_PHOTO_SHIFT } & PHOTO) as u16
}

/// A product found by one of its photos: `id` is the product's store key, `photo` the photo
/// that scored best (0 for the main photo and for text vectors), `score` its cosine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhotoHit {
    pub id: u64,
    pub photo: u16,
    pub score: f32,
}

/// The first (best) hit of each product, in order, at most `k`. `hits` are index ids ranked
/// best first.
pub fn fold(hits: Vec<Hit>, k: usize) -> Vec<PhotoHit> {
    let mut seen = HashSet::with_capacity(hits.len());
    hits.into_iter()
        .filter(|h| seen.insert(key_of(h.id)))
        .take(k)
        .map(|h| PhotoHit { id: key_of(h.id), photo: photo_of(h.id), score: h.score })
        .collect()
}

/// The most photos a product of one space has had since its index loaded: how many rows a
/// search asks for per result. Only grows (a product losing photos leaves it as it was, which
/// costs rows, never results).
#[derive(Debug)]
pub struct Photos(AtomicU16);

impl Default for Photos {
    fn default() -> Self {
        Photos(AtomicU16::new(1))
    }
}

impl Photos {
    /// Notes that photo `photo` of some product is indexed.
    pub fn saw(&self, photo: u16) {
        self.0.fetch_max(photo.saturating_add(1), Ordering::Relaxed);
    }

    /// Rows to ask the index for so that folding leaves `k` products.
    pub fn rows_for(&self, k: usize) -> usize {
        k.saturating_mul(usize::from(self.0.load(Ordering::Relaxed).max(1)))
    }

    pub fn reset(&self) {
        self.0.store(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let keys = [0, 1, 17, SMALL_KEYS - 1, SMALL_KEYS, BIG - 1, BIG, MAX_KEY];
        let mut seen = HashSet::new();
        for key in keys {
            for photo in [0, 1, 7, 15] {
                let id = index_id(key, photo);
                assert_eq!((key_of(id), photo_of(id)), (key, photo), "key {key} photo {photo}");
                assert!(seen.insert(id), "id {id} given twice");
                assert_eq!(id < 1 << 32, key < SMALL_KEYS, "the compact index's range");
            }
        }
    }

    #[test]
    fn a_main_photos_id_is_its_key() {
        // What keeps a one-photo catalog's index (ids, shards, dense table) as before photos.
        for key in (0..1000).chain([SMALL_KEYS - 1, SMALL_KEYS, MAX_KEY]) {
            assert_eq!(index_id(key, 0) == key, key < SMALL_KEYS);
        }
        assert_eq!(index_id(5, 2), 5 | 2 << 28);
    }

    #[test]
    fn shards_split_products_and_their_photos() {
        // Shards (id % n) split main photos as they split keys, and further photos too.
        for n in [2u64, 3] {
            for photo in [0, 1, 2, 15] {
                let mut per_shard = vec![0; n as usize];
                for key in 0..3000 {
                    per_shard[(index_id(key, photo) % n) as usize] += 1;
                }
                assert!(per_shard.iter().all(|&c| c == 3000 / n), "{n} shards, photo {photo}: {per_shard:?}");
            }
        }
    }

    #[test]
    fn fold_keeps_each_products_best_photo() {
        let hits = [(index_id(7, 2), 0.9), (index_id(3, 0), 0.8), (index_id(7, 0), 0.7), (index_id(5, 1), 0.6)]
            .map(|(id, score)| Hit { id, score });
        let folded = fold(hits.to_vec(), 10);
        assert_eq!(
            folded,
            [
                PhotoHit { id: 7, photo: 2, score: 0.9 },
                PhotoHit { id: 3, photo: 0, score: 0.8 },
                PhotoHit { id: 5, photo: 1, score: 0.6 }
            ]
        );
        assert_eq!(fold(hits.to_vec(), 2).len(), 2);
    }

    #[test]
    fn rows_grow_with_the_most_photos_seen() {
        let p = Photos::default();
        assert_eq!(p.rows_for(10), 10);
        p.saw(0);
        assert_eq!(p.rows_for(10), 10);
        p.saw(3);
        p.saw(1);
        assert_eq!(p.rows_for(10), 40);
    }
}
