//! Injected randomness for loadbalance draws, seedable for tests and `gatewise route --seed`.

use std::sync::atomic::{AtomicU64, Ordering};

/// A source of uniform numbers in `[0, 1)`. Shared across requests, so `&self`.
pub trait RandomSource: Send + Sync {
    /// The next number in `[0, 1)`.
    fn next_f64(&self) -> f64;
}

/// SplitMix64 over an atomic counter: lock-free, seedable, and the same sequence on
/// every platform and release (unlike `rand`'s `StdRng`, whose algorithm may change).
#[derive(Debug)]
pub struct SplitMix64 {
    state: AtomicU64,
}

impl SplitMix64 {
    /// A generator with a fixed seed.
    pub fn new(seed: u64) -> Self {
        Self { state: AtomicU64::new(seed) }
    }

    /// A generator seeded from the process's random hasher keys: good enough for load
    /// spreading (not for cryptography), and no I/O.
    pub fn from_entropy() -> Self {
        use std::hash::{BuildHasher, Hasher};
        Self::new(std::collections::hash_map::RandomState::new().build_hasher().finish())
    }
}

impl RandomSource for SplitMix64 {
    fn next_f64(&self) -> f64 {
        let mut z = self.state.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // 53 random bits → [0, 1).
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}
