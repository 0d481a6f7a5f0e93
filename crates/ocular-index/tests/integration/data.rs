//! Deterministic test data and the brute-force reference every search is compared with.
//! Also included by `examples/bench_index.rs` (hence `allow(dead_code)`).
#![allow(dead_code)]

/// SplitMix64: tiny, deterministic, good enough for test vectors.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn normalise(v: Vec<f64>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.into_iter().map(|x| (x / norm) as f32).collect()
}

/// A uniformly random direction: the hardest case for quantisation (every score near 0,
/// neighbours separated by tiny gaps).
pub fn random_unit(rng: &mut Rng, dim: usize) -> Vec<f32> {
    normalise((0..dim).map(|_| rng.normal()).collect())
}

/// Vectors around `centers`, like embeddings of products in a few categories: many
/// near-duplicates with scores packed close together near the top.
pub struct Clusters {
    centers: Vec<Vec<f64>>,
    spread: f64,
}

impl Clusters {
    pub fn new(rng: &mut Rng, count: usize, dim: usize, spread: f64) -> Self {
        let centers = (0..count).map(|_| random_unit(rng, dim).into_iter().map(f64::from).collect()).collect();
        Self { centers, spread }
    }

    pub fn sample(&self, rng: &mut Rng) -> Vec<f32> {
        let center = &self.centers[(rng.next_u64() % self.centers.len() as u64) as usize];
        let scale = self.spread / (center.len() as f64).sqrt();
        normalise(center.iter().map(|c| c + scale * rng.normal()).collect())
    }
}

/// Exact top-k by f64 cosine, best first, ties by smaller id.
pub fn brute_force(
    data: &[(u64, Vec<f32>)],
    query: &[f32],
    k: usize,
    filter: Option<&dyn Fn(u64) -> bool>,
) -> Vec<(u64, f64)> {
    let qn = query.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let mut all: Vec<(u64, f64)> = data
        .iter()
        .filter(|(id, _)| filter.is_none_or(|f| f(*id)))
        .map(|(id, v)| {
            let vn = v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
            let dot: f64 = v.iter().zip(query).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
            (*id, dot / (vn * qn))
        })
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// Fraction of the reference ids that `found` contains.
pub fn recall(found: &[u64], reference: &[(u64, f64)]) -> f64 {
    if reference.is_empty() {
        return 1.0;
    }
    let hit = reference.iter().filter(|(id, _)| found.contains(id)).count();
    hit as f64 / reference.len() as f64
}
