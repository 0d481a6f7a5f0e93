//! An index split into shards searched in parallel, one per core.
//!
//! A scan is bound by memory bandwidth: 100k × 1280-d int8 codes are 128 MB read per query,
//! 8.4 ms on one core of the project's VM (`ocular-index`'s `bench_index`). Splitting the rows
//! over the cores lets each core scan its share; the per-shard top-k lists are then merged,
//! which is exact because every row lives in exactly one shard. Ids go to shard
//! `id % shards`, so a product's upserts and removals always reach the same shard (and a
//! compact shard can address its ids through a dense table indexed by `id / shards`).

use ocular_index::{
    CompactConfig, CompactIndex, Hit, IndexError, QuantizedConfig, QuantizedIndex, SnapshotError, VectorIndex,
};

use crate::persist::IndexDir;

/// A filter that may be called from several threads at once.
pub type SyncFilter<'a> = &'a (dyn Fn(u64) -> bool + Sync);

/// One shard: either index kind, behind the same trait.
// A few shards per index (one per core), built once and never moved: boxing the larger
// variant would only add an indirection to every search.
#[allow(clippy::large_enum_variant)]
enum Shard {
    Quantized(QuantizedIndex),
    Compact(CompactIndex),
}

impl Shard {
    fn index(&self) -> &dyn VectorIndex {
        match self {
            Shard::Quantized(i) => i,
            Shard::Compact(i) => i,
        }
    }
}

pub struct ShardedIndex {
    shards: Vec<Shard>,
}

impl ShardedIndex {
    /// int8 codes in memory (see `ocular_index::QuantizedIndex`).
    pub fn new(config: QuantizedConfig, shards: usize) -> Result<Self, IndexError> {
        let shards = (0..shards.max(1))
            .map(|_| QuantizedIndex::new(config.clone()).map(Shard::Quantized))
            .collect::<Result<_, _>>()?;
        Ok(Self { shards })
    }

    /// One-bit codes in memory, vectors in a mapped file (see `ocular_index::CompactIndex`).
    pub fn compact(config: CompactConfig, shards: usize) -> Result<Self, IndexError> {
        let n = shards.max(1);
        let config = config.id_stride(n as u64);
        let shards = (0..n).map(|_| CompactIndex::new(config.clone()).map(Shard::Compact)).collect::<Result<_, _>>()?;
        Ok(Self { shards })
    }

    /// Like [`Self::compact`], with each shard's vectors in a named file of `dir`, so the index
    /// can be saved ([`Self::save`]) and opened at the next start ([`Self::open_saved`]).
    pub(crate) fn compact_named(
        config: CompactConfig,
        shards: usize,
        dir: &IndexDir,
        space: &str,
    ) -> Result<Self, IndexError> {
        let n = shards.max(1);
        let config = config.id_stride(n as u64);
        let shards = (0..n)
            .map(|i| CompactIndex::new(config.clone().vectors(dir.vectors(space, i))).map(Shard::Compact))
            .collect::<Result<_, _>>()?;
        Ok(Self { shards })
    }

    /// Opens the shards saved under `key`, in parallel, leaving their vector files' checksums
    /// to [`Self::verify_saved`] (`CompactIndex::open_unverified`).
    pub(crate) fn open_saved(
        config: CompactConfig,
        shards: usize,
        dir: &IndexDir,
        space: &str,
        key: &[u8],
    ) -> Result<Self, SnapshotError> {
        let n = shards.max(1);
        let config = config.id_stride(n as u64);
        let open = |i: usize| {
            CompactIndex::open_unverified(config.clone().vectors(dir.vectors(space, i)), &dir.snapshot(space, i), key)
                .map(Shard::Compact)
        };
        let shards = std::thread::scope(|s| {
            let handles: Vec<_> = (1..n).map(|i| s.spawn(move || open(i))).collect();
            let mut shards = vec![open(0)?];
            for handle in handles {
                shards.push(handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?);
            }
            Ok::<_, SnapshotError>(shards)
        })?;
        Ok(Self { shards })
    }

    /// Checks every opened shard's vector file against its saved checksum, in parallel.
    pub(crate) fn verify_saved(&self) -> Result<(), SnapshotError> {
        let verify = |shard: &Shard| match shard {
            Shard::Compact(c) => c.verify_vectors(),
            Shard::Quantized(_) => Ok(()),
        };
        std::thread::scope(|s| {
            let handles: Vec<_> = self.shards.iter().skip(1).map(|shard| s.spawn(move || verify(shard))).collect();
            let mut result = self.shards.first().map_or(Ok(()), verify);
            for handle in handles {
                let other = handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                result = result.and(other);
            }
            result
        })
    }

    /// Saves every compact shard of an index built by [`Self::compact_named`] under `key`.
    pub(crate) fn save(&self, dir: &IndexDir, space: &str, key: &[u8]) -> Result<(), IndexError> {
        for (i, shard) in self.shards.iter().enumerate() {
            if let Shard::Compact(c) = shard {
                c.save(&dir.snapshot(space, i), key)?;
            }
        }
        Ok(())
    }

    fn shard(&self, id: u64) -> &dyn VectorIndex {
        // `shards` is never empty (the constructors make at least one).
        self.shards[(id % self.shards.len() as u64) as usize].index()
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.index().len()).sum()
    }

    /// Bytes of the compact shards' vector files: page cache, not anonymous memory.
    pub fn mapped_bytes(&self) -> usize {
        self.shards.iter().map(|s| if let Shard::Compact(c) = s { c.mapped_bytes() } else { 0 }).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn memory_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.index().memory_bytes()).sum()
    }

    pub fn upsert(&self, id: u64, vector: &[f32]) -> Result<(), IndexError> {
        self.shard(id).upsert(id, vector)
    }

    /// Upserts `rows`, each shard's share on its own thread (one per shard, which is the
    /// thread budget the index was split for): what makes a rebuild use every core. Stops a
    /// shard at its first error; rows of other shards may have been written.
    pub fn upsert_many(&self, rows: &[(u64, Vec<f32>)]) -> Result<(), IndexError> {
        let n = self.shards.len() as u64;
        let share = |i: usize| {
            let shard = self.shards[i].index();
            rows.iter().filter(|(id, _)| (id % n) as usize == i).try_for_each(|(id, v)| shard.upsert(*id, v))
        };
        if n == 1 {
            return share(0);
        }
        std::thread::scope(|s| {
            let others: Vec<_> = (1..self.shards.len()).map(|i| s.spawn(move || share(i))).collect();
            let mut result = share(0);
            for handle in others {
                result = result.and(handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
            result
        })
    }

    pub fn remove(&self, id: u64) -> bool {
        self.shard(id).remove(id)
    }

    /// The `k` best hits over all shards, best first, ties to the smaller id.
    pub fn search(&self, query: &[f32], k: usize, filter: Option<SyncFilter<'_>>) -> Result<Vec<Hit>, IndexError> {
        self.search_inner(query, k, filter, None)
    }

    /// Like [`Self::search`], but compact shards rescore at most `max_rescored` rows each (see
    /// `CompactIndex::search_bounded`); int8 shards search as usual.
    pub fn search_bounded(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<SyncFilter<'_>>,
        max_rescored: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        self.search_inner(query, k, filter, Some(max_rescored))
    }

    fn search_inner(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<SyncFilter<'_>>,
        max_rescored: Option<usize>,
    ) -> Result<Vec<Hit>, IndexError> {
        let one = |shard: &Shard| {
            let filter = filter.map(|f| f as &dyn Fn(u64) -> bool);
            match (shard, max_rescored) {
                (Shard::Compact(c), Some(max)) => c.search_bounded(query, k, filter, max).map(|(hits, _)| hits),
                _ => shard.index().search(query, k, filter),
            }
        };
        let (first, rest) = self.shards.split_first().ok_or(IndexError::InvalidConfig("no shards"))?;
        if rest.is_empty() {
            return one(first);
        }
        let mut hits = std::thread::scope(|s| {
            let others: Vec<_> = rest.iter().map(|shard| s.spawn(move || one(shard))).collect();
            let mut hits = one(first)?;
            for handle in others {
                // A panic in a shard's scan is a bug; re-raise it rather than return partial hits.
                hits.extend(handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?);
            }
            Ok::<_, IndexError>(hits)
        })?;
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        hits.truncate(k);
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_return_the_same_hits_as_one_index() {
        shards_agree(
            ShardedIndex::new(QuantizedConfig::new(8), 1).unwrap(),
            ShardedIndex::new(QuantizedConfig::new(8), 3).unwrap(),
        );
        let compact = || CompactConfig::new(8).dir(std::env::temp_dir());
        shards_agree(ShardedIndex::compact(compact(), 1).unwrap(), ShardedIndex::compact(compact(), 3).unwrap());
    }

    /// A pseudo-random vector of 16 components per `seed`.
    fn row(seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..16)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn photo_ids_spread_over_compact_shards_and_further_photos_cost_a_few_bytes() {
        use crate::photos::{fold, index_id};
        for n in [2usize, 3] {
            let index = ShardedIndex::compact(CompactConfig::new(16).dir(std::env::temp_dir()), n).unwrap();
            let keyed = ShardedIndex::compact(CompactConfig::new(16).dir(std::env::temp_dir()), n).unwrap();
            for key in 0..3000u64 {
                index.upsert(index_id(key, 0), &row(key)).unwrap();
                keyed.upsert(key, &row(key)).unwrap();
            }
            // One photo per product: the index a catalog had before several photos existed.
            assert_eq!(index.memory_bytes(), keyed.memory_bytes(), "{n} shards");
            let one_photo = index.memory_bytes();
            let further: Vec<(u64, u16)> =
                (0..3000u64).step_by(7).flat_map(|key| (1..4u16).map(move |p| (key, p))).collect();
            for &(key, p) in &further {
                index.upsert(index_id(key, p), &row(1_000_000 + key * 16 + u64::from(p))).unwrap();
            }
            assert_eq!(index.len(), 3000 + further.len());
            for (i, shard) in index.shards.iter().enumerate() {
                let len = shard.index().len();
                assert!(len.abs_diff(index.len() / n) <= 150, "{n} shards: shard {i} holds {len}");
            }
            // The ids above 2^28 sit in small maps, not in tables stretched to 2^32 / n: beside
            // the same rows under plain keys (the same code segments), they cost a few bytes
            // each. (Compared with the keyed index, not with `one_photo`, since the rows' own
            // code segments, 1024 rows at a time, are not the ids' cost.)
            for (i, &(key, p)) in further.iter().enumerate() {
                keyed.upsert(3000 + i as u64, &row(1_000_000 + key * 16 + u64::from(p))).unwrap();
            }
            assert!(index.memory_bytes() > one_photo);
            let extra = index.memory_bytes().saturating_sub(keyed.memory_bytes());
            assert!(extra < 24 * further.len(), "{n} shards: {extra} B more for {} further photos", further.len());
            for &(key, p) in further.iter().step_by(37) {
                let hits = fold(index.search(&row(1_000_000 + key * 16 + u64::from(p)), 3, None).unwrap(), 1);
                assert_eq!((hits[0].id, hits[0].photo), (key, p), "{n} shards");
            }
            // Removals reach every photo's id, wherever its shard.
            for &(key, p) in &further {
                assert!(index.remove(index_id(key, p)));
            }
            for key in (0..3000u64).step_by(7) {
                assert!(index.remove(index_id(key, 0)));
                assert!(!index.remove(index_id(key, 1)));
            }
            assert_eq!(index.len(), 3000 - further.len() / 3);
        }
    }

    fn shards_agree(one: ShardedIndex, three: ShardedIndex) {
        let mut x = 7u64;
        for id in 0..500u64 {
            let v: Vec<f32> = (0..8)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 1000) as f32 / 500.0 - 1.0
                })
                .collect();
            one.upsert(id, &v).unwrap();
            three.upsert(id, &v).unwrap();
        }
        // The batched path a rebuild takes puts the same rows where the single one does.
        let more: Vec<(u64, Vec<f32>)> =
            (500..700u64).map(|id| (id, (0..8).map(|i| ((id * 7 + i) % 13) as f32 - 6.0).collect())).collect();
        three.upsert_many(&more).unwrap();
        for (id, v) in &more {
            one.upsert(*id, v).unwrap();
        }
        assert!(three.remove(42) && one.remove(42));
        assert_eq!((one.len(), three.len()), (699, 699));
        let q = [0.3, -0.2, 0.9, 0.1, 0.0, -0.5, 0.4, 0.2];
        let even = |id: u64| id.is_multiple_of(2);
        for filter in [None, Some(&even as SyncFilter<'_>)] {
            let a = one.search(&q, 10, filter).unwrap();
            let b = three.search(&q, 10, filter).unwrap();
            assert_eq!(a.iter().map(|h| h.id).collect::<Vec<_>>(), b.iter().map(|h| h.id).collect::<Vec<_>>());
        }
    }
}
