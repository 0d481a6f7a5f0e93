//! Anonymous memory per product of ocular's three compact spaces (1280, 384 and 384
//! dimensions, default bits) in two shards (`id % 2`, as `ocular-search`'s sharded index
//! routes), under three ways of turning (product key, photo) into an index id: the product key
//! alone (before several photos per product), the first photo scheme (photo number
//! interleaved above the key's low 4 bits, ids 16 times the largest key), and the current one
//! (photo 0's id is the key, further photos `key | photo << 28`, in the overflow map). Keys
//! count up from 1, as a store's do; "2 photos" gives every tenth product a second photo.
//! Deterministic byte counts (`memory_bytes`), not timings.
//!
//! ```text
//! cargo run --release -p ocular-index --example id_memory -- 100000 [DIR]
//! ```
//!
//! DIR holds the unlinked vector files (the system's temporary directory by default).

use ocular_index::{CompactConfig, CompactIndex, VectorIndex};

const SHARDS: u64 = 2;

fn interleaved(key: u64, photo: u64) -> u64 {
    ((key >> 4) << 8) | (photo << 4) | (key & 15)
}

fn current(key: u64, photo: u64) -> u64 {
    key | photo << 28
}

fn key_only(key: u64, _photo: u64) -> u64 {
    key
}

/// Anonymous bytes of the three spaces holding `products` products, `photos` of them per
/// tenth product (one for the others).
fn bytes(scheme: fn(u64, u64) -> u64, products: u64, photos: u64, dir: &std::path::Path) -> usize {
    let mut x = 88_172_645_463_325_252u64;
    let mut component = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 2001) as f32 / 1000.0 - 1.0
    };
    let mut total = 0;
    for dim in [1280usize, 384, 384] {
        let config = CompactConfig::new(dim).dir(dir).id_stride(SHARDS);
        let shards: Vec<CompactIndex> = (0..SHARDS).map(|_| CompactIndex::new(config.clone()).unwrap()).collect();
        for key in 1..=products {
            for photo in 0..if key % 10 == 0 { photos } else { 1 } {
                let id = scheme(key, photo);
                let v: Vec<f32> = (0..dim).map(|_| component()).collect();
                shards[(id % SHARDS) as usize].upsert(id, &v).unwrap();
            }
        }
        total += shards.iter().map(|s| s.memory_bytes()).sum::<usize>();
    }
    total
}

fn main() {
    let mut args = std::env::args().skip(1);
    let products: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = args.next().map_or_else(std::env::temp_dir, Into::into);
    println!("{products} products, 3 spaces, {SHARDS} shards: anonymous bytes per product");
    let per = |b: usize| b as f64 / products as f64;
    println!("  key only (before photos), 1 photo: {:.1}", per(bytes(key_only, products, 1, &dir)));
    for (name, scheme) in [("interleaved", interleaved as fn(u64, u64) -> u64), ("current", current)] {
        for photos in [1, 2] {
            println!("  {name}, {photos} photo(s): {:.1}", per(bytes(scheme, products, photos, &dir)));
        }
    }
}
