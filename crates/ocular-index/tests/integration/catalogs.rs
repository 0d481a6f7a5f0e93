//! Catalogs for the compact index's recall test and benchmark, generated row by row (so a
//! million rows need no memory) and fast (xorshift, a normal from four uniforms), seeded.
//! Also included by `examples/bench_compact.rs` (hence `allow(dead_code)`).
//!
//! - `bench_*`: shaped like `ocular-search`'s bench catalog: 21 seed products, every other
//!   product a seed plus noise (image space: non-negative unit seeds, `+ 0.03·N`, clipped at
//!   zero, as pooled CNN features are; ConSE space: signed seeds `+ 0.05·N`); text space:
//!   independent random directions. Queries are a seed plus fresh noise, like a new photo of
//!   a catalogued product.
//! - `clustered`: the adversarial case: tight clusters of near-duplicates (every cluster
//!   `size` rows within cosine ≈ 0.995 of its centre, the centres random), queries near a
//!   centre, so the whole top 10 lies in one cluster and differs by noise.
#![allow(dead_code)]

/// xorshift64*: fast, reproducible.
pub struct Fast(u64);

impl Fast {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Roughly standard normal (sum of four uniforms).
    pub fn normal(&mut self) -> f32 {
        (self.uniform() + self.uniform() + self.uniform() + self.uniform()) * 1.732 - 3.464
    }
}

pub fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
    v
}

enum Shape {
    Seeds { seeds: Vec<Vec<f32>>, noise: f32, clip: bool },
    Random,
    Clusters { centers: Vec<Vec<f32>>, spread: f32 },
}

pub struct Catalog {
    pub name: String,
    pub dim: usize,
    shape: Shape,
    rng: Fast,
    queries: Fast,
}

impl Catalog {
    /// The bench catalog's image space (1280-d EfficientNet features).
    pub fn bench_image(dim: usize, seed: u64) -> Self {
        let mut rng = Fast::new(seed);
        let seeds = (0..21).map(|_| unit((0..dim).map(|_| rng.normal().max(0.0).powi(2)).collect())).collect();
        Self::new(format!("bench-image-{dim}"), dim, Shape::Seeds { seeds, noise: 0.03, clip: true }, rng)
    }

    /// The bench catalog's ConSE space (384-d text space, photos placed by class prompts).
    pub fn bench_image_text(dim: usize, seed: u64) -> Self {
        let mut rng = Fast::new(seed);
        let seeds = (0..21).map(|_| unit((0..dim).map(|_| rng.normal()).collect())).collect();
        Self::new(format!("bench-image_text-{dim}"), dim, Shape::Seeds { seeds, noise: 0.05, clip: false }, rng)
    }

    /// The bench catalog's text space: independent random directions.
    pub fn bench_text(dim: usize, seed: u64) -> Self {
        Self::new(format!("bench-text-{dim}"), dim, Shape::Random, Fast::new(seed))
    }

    /// `rows / size` clusters of `size` near-duplicates each.
    pub fn clustered(dim: usize, rows: usize, size: usize, seed: u64) -> Self {
        let mut rng = Fast::new(seed);
        let count = rows.div_ceil(size.max(1)).max(1);
        let centers = (0..count).map(|_| unit((0..dim).map(|_| rng.normal()).collect())).collect();
        // Noise of norm ≈ 0.1: cosine ≈ 0.995 to the centre, ≈ 0.99 between members.
        Self::new(format!("clustered-{dim}x{size}"), dim, Shape::Clusters { centers, spread: 0.1 }, rng)
    }

    fn new(name: String, dim: usize, shape: Shape, rng: Fast) -> Self {
        let queries = Fast::new(rng.0 ^ 0x5151_5151);
        Self { name, dim, shape, rng, queries }
    }

    /// Row `i`; rows must be asked for in order 0, 1, 2... (the noise is a stream).
    pub fn row(&mut self, i: usize) -> Vec<f32> {
        Self::draw(&self.shape, self.dim, &mut self.rng, i)
    }

    /// The `i`-th query (an independent stream).
    pub fn query(&mut self, i: usize) -> Vec<f32> {
        let pick = (self.queries.next_u64() as usize).wrapping_add(i);
        Self::draw(&self.shape, self.dim, &mut self.queries, pick)
    }

    fn draw(shape: &Shape, dim: usize, rng: &mut Fast, i: usize) -> Vec<f32> {
        match shape {
            Shape::Seeds { seeds, noise, clip } => {
                let s = &seeds[i % seeds.len()];
                unit(
                    s.iter()
                        .map(|x| {
                            let v = x + noise * rng.normal();
                            if *clip { v.max(0.0) } else { v }
                        })
                        .collect(),
                )
            }
            Shape::Random => unit((0..dim).map(|_| rng.normal()).collect()),
            Shape::Clusters { centers, spread } => {
                let c = &centers[i % centers.len()];
                let scale = spread / (dim as f32).sqrt();
                unit(c.iter().map(|x| x + scale * rng.normal()).collect())
            }
        }
    }
}

/// Exact top-k (f32 dot of unit vectors, ties to the smaller id) kept while rows stream by.
pub struct ExactTopK {
    k: usize,
    best: Vec<(f32, u64)>,
}

impl ExactTopK {
    pub fn new(k: usize) -> Self {
        Self { k, best: Vec::with_capacity(k + 1) }
    }

    pub fn push(&mut self, score: f32, id: u64) {
        let better = |a: &(f32, u64), b: &(f32, u64)| a.0 > b.0 || (a.0 == b.0 && a.1 < b.1);
        if self.best.len() == self.k && !better(&(score, id), &self.best[self.k - 1]) {
            return;
        }
        let at = self.best.iter().position(|e| better(&(score, id), e)).unwrap_or(self.best.len());
        self.best.insert(at, (score, id));
        self.best.truncate(self.k);
    }

    pub fn ids(&self) -> Vec<u64> {
        self.best.iter().map(|e| e.1).collect()
    }

    pub fn scores(&self) -> Vec<f32> {
        self.best.iter().map(|e| e.0).collect()
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, ar) = a.as_chunks::<8>();
    let (b8, br) = b.as_chunks::<8>();
    for (x, y) in a8.iter().zip(b8) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + ar.iter().zip(br).map(|(x, y)| x * y).sum::<f32>()
}
