//! The request mix: which kinds of request a run sends, by weight, and the seeded generator
//! that draws them, so two runs with the same seed send the same sequence per worker.

use std::fmt;
use std::str::FromStr;

/// One kind of request; the names are the `--mix` keys and the report's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Analyze,
    AnalyzeGradcam,
    SearchPhoto,
    SearchText,
    /// Issue 16's JSON attack: an 18 MB text search whose unknown `pad` field the server used to
    /// keep at ~16x its size. Answered `413 payload_too_large` now, unread.
    AttackJson,
    /// Issue 16's strip: a PNG of 1,000,000 x 2 pixels to photo search (a 112-million-pixel-wide
    /// intermediate under CLIP before). Answered `422 image_aspect_ratio` from its header now.
    AttackStrip,
}

impl Kind {
    pub const ALL: [Kind; 6] =
        [Kind::Analyze, Kind::AnalyzeGradcam, Kind::SearchPhoto, Kind::SearchText, Kind::AttackJson, Kind::AttackStrip];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Analyze => "analyze",
            Kind::AnalyzeGradcam => "analyze_gradcam",
            Kind::SearchPhoto => "search_photo",
            Kind::SearchText => "search_text",
            Kind::AttackJson => "attack_json",
            Kind::AttackStrip => "attack_strip",
        }
    }

    /// Whether the request uploads one of the `--photo`s (and so needs at least one).
    pub fn needs_photo(self) -> bool {
        matches!(self, Kind::Analyze | Kind::AnalyzeGradcam | Kind::SearchPhoto)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MixError {
    Syntax(String),
    UnknownKind(String),
    BadWeight(String),
    Duplicate(Kind),
    Empty,
}

impl fmt::Display for MixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        match self {
            MixError::Syntax(s) => write!(f, "expected KIND=WEIGHT, got {s:?}"),
            MixError::UnknownKind(s) => write!(f, "unknown request kind {s:?} (known: {})", kinds.join(", ")),
            MixError::BadWeight(s) => write!(f, "weight must be a whole number, got {s:?}"),
            MixError::Duplicate(k) => write!(f, "{k} appears twice in the mix"),
            MixError::Empty => f.write_str("the mix has no kind with a weight above zero"),
        }
    }
}

impl std::error::Error for MixError {}

/// Weighted kinds, e.g. `analyze=1,analyze_gradcam=1,search_photo=2,search_text=2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    weights: Vec<(Kind, u32)>,
    total: u64,
}

impl Mix {
    /// Kinds with a weight above zero, in the order given.
    pub fn kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        self.weights.iter().map(|(k, _)| *k)
    }

    pub fn weights(&self) -> &[(Kind, u32)] {
        &self.weights
    }

    /// The kind for a uniform draw: kind `i` owns `weight_i` consecutive values of `0..total`.
    pub fn pick(&self, rng: &mut Rng) -> Kind {
        let mut r = rng.below(self.total);
        for (kind, w) in &self.weights {
            if r < u64::from(*w) {
                return *kind;
            }
            r -= u64::from(*w);
        }
        unreachable!("a draw below the total weight always lands on a kind")
    }
}

impl FromStr for Mix {
    type Err = MixError;

    fn from_str(s: &str) -> Result<Self, MixError> {
        let mut weights: Vec<(Kind, u32)> = Vec::new();
        let mut seen = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').ok_or_else(|| MixError::Syntax(part.into()))?;
            let kind = Kind::ALL
                .into_iter()
                .find(|k| k.name() == name.trim())
                .ok_or_else(|| MixError::UnknownKind(name.trim().into()))?;
            let weight: u32 = weight.trim().parse().map_err(|_| MixError::BadWeight(weight.trim().into()))?;
            if seen.contains(&kind) {
                return Err(MixError::Duplicate(kind));
            }
            seen.push(kind);
            if weight > 0 {
                weights.push((kind, weight));
            }
        }
        let total = weights.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return Err(MixError::Empty);
        }
        Ok(Mix { weights, total })
    }
}

/// SplitMix64: tiny, seedable and good enough to spread requests over kinds and photos
/// (no dependency on a random-number crate for that).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`); the modulo bias is negligible for the small `n` used here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_mix() {
        let mix: Mix = "analyze=1,analyze_gradcam=1,search_photo=2,search_text=2".parse().unwrap();
        assert_eq!(
            mix.weights(),
            &[(Kind::Analyze, 1), (Kind::AnalyzeGradcam, 1), (Kind::SearchPhoto, 2), (Kind::SearchText, 2)]
        );
    }

    #[test]
    fn tolerates_spaces_and_drops_zero_weights() {
        let mix: Mix = " search_text = 3 , analyze=0,".parse().unwrap();
        assert_eq!(mix.weights(), &[(Kind::SearchText, 3)]);
        assert_eq!(mix.kinds().collect::<Vec<_>>(), vec![Kind::SearchText]);
    }

    #[test]
    fn refuses_bad_mixes_with_the_reason() {
        assert_eq!("analyze".parse::<Mix>(), Err(MixError::Syntax("analyze".into())));
        assert_eq!("analyse=1".parse::<Mix>(), Err(MixError::UnknownKind("analyse".into())));
        assert_eq!("analyze=-1".parse::<Mix>(), Err(MixError::BadWeight("-1".into())));
        assert_eq!("analyze=1.5".parse::<Mix>(), Err(MixError::BadWeight("1.5".into())));
        assert_eq!("analyze=1,analyze=2".parse::<Mix>(), Err(MixError::Duplicate(Kind::Analyze)));
        assert_eq!("analyze=0".parse::<Mix>(), Err(MixError::Empty));
        assert_eq!("".parse::<Mix>(), Err(MixError::Empty));
    }

    #[test]
    fn draws_follow_the_weights() {
        let mix: Mix = "analyze=1,search_text=3".parse().unwrap();
        let mut rng = Rng::new(7);
        let n = 40_000;
        let text = (0..n).filter(|_| mix.pick(&mut rng) == Kind::SearchText).count();
        // Expected 30 000; a binomial standard deviation is ~87, so ±1 000 only fails on a bug.
        assert!((29_000..31_000).contains(&text), "search_text drawn {text} times of {n}");
    }

    #[test]
    fn a_seed_fixes_the_sequence() {
        let mix: Mix = "analyze=1,search_photo=1,search_text=1".parse().unwrap();
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..64).map(|_| mix.pick(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }
}
