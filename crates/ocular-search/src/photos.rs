//! Several photos per product in one index: the photo-id scheme and best-photo folding.
//!
//! A product may have up to [`MAX_PHOTOS`] photos, each with its own vector in a photo space.
//! The vector indexes know nothing of products: they hold `u64` ids. A space's index therefore
//! holds one entry per (product, photo), under an id made of both ([`index_id`]), and a search
//! folds the hits of one product into its best photo: a product's score is the largest cosine
//! over its photos, and the hit says which photo it was. The text space uses the same scheme
//! with photo 0 only, so every space is handled alike. The mapping is arithmetic, not a table:
//! no memory per photo beyond the index entry itself.
//!
//! Folding needs more rows than results: with at most `m` photos per product in a space,
//! `k·m` nearest rows always hold at least `k` products (or every product there is). `m` is the
//! most photos any product of the space has had since the index loaded (see
//! [`Photos`]): a catalog of one photo per product asks for exactly `k` rows, as before.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, Ordering};

use ocular_index::Hit;
pub use ocular_store::MAX_PHOTOS;

/// Low bits of an index id that hold the photo number.
pub const PHOTO_BITS: u32 = 4;
const _: () = assert!(MAX_PHOTOS <= 1 << PHOTO_BITS);

/// The key's low bits kept lowest in an index id: a sharded index routes ids by `id % shards`
/// (`crate::sharded`), and with the key's low bits there every shard gets its share of the
/// products (with the photo number lowest, every main photo would land in shard 0).
const KEY_LOW: u32 = 4;
const LOW: u64 = (1 << KEY_LOW) - 1;
const PHOTO: u64 = (1 << PHOTO_BITS) - 1;

/// The index id of photo `photo` of the product with store key `key`: the key's high bits,
/// the photo number, the key's low [`KEY_LOW`] bits. The cost: ids reach 16 times the largest
/// key, and the compact index's dense id table grows with the largest id (4 bytes per id per
/// shard stride, docs/ARCHITECTURE.md).
pub fn index_id(key: u64, photo: u16) -> u64 {
    ((key >> KEY_LOW) << (KEY_LOW + PHOTO_BITS)) | ((u64::from(photo) & PHOTO) << KEY_LOW) | (key & LOW)
}

/// The product key of an index id.
pub fn key_of(id: u64) -> u64 {
    ((id >> (KEY_LOW + PHOTO_BITS)) << KEY_LOW) | (id & LOW)
}

/// The photo number of an index id.
pub fn photo_of(id: u64) -> u16 {
    ((id >> KEY_LOW) & PHOTO) as u16
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
        for (key, photo) in [(0, 0), (1, 15), (17, 3), (u64::MAX >> PHOTO_BITS, 7)] {
            let id = index_id(key, photo);
            assert_eq!((key_of(id), photo_of(id)), (key, photo));
        }
        assert_ne!(index_id(1, 0), index_id(0, 1));
        // Shards (id % n) split products as they split keys.
        for n in [1u64, 2, 4, 8, 16] {
            for key in 0..100 {
                assert_eq!(index_id(key, 0) % n, key % n);
                assert_eq!(index_id(key, 5) % n, key % n, "a product's photos share its shard");
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
