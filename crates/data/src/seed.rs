//! Seed derivation: one user seed drives every host RNG through named streams ("synth",
//! "negatives", "split", "shuffle/epoch3", ...), so adding a new consumer of randomness never
//! shifts the numbers another consumer sees.
//!
//! The mixing is splitmix64 over the base seed and an FNV-1a hash of the stream name: both are
//! fixed, documented algorithms, so derived seeds are stable across platforms, Rust versions and
//! releases of this crate (std's `DefaultHasher` promises none of that).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a hash of a string's UTF-8 bytes.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(FNV_OFFSET, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// The splitmix64 finalizer (Steele, Lea, Flood 2014): a bijective, well-mixing map on u64.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of the named `stream` under the user seed `base`.
pub fn derive_seed(base: u64, stream: &str) -> u64 {
    // Mixing base first keeps (base, stream) and (base', stream') from colliding by simple xor.
    splitmix64(splitmix64(base) ^ fnv1a(stream))
}

/// A ChaCha8 generator for the named stream (ChaCha's output is specified, hence portable).
pub fn rng(base: u64, stream: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive_seed(base, stream))
}

/// A generator for the named stream and a sub-stream index (e.g. a user id): the same key seed
/// with ChaCha's 64-bit stream counter set, so per-user work can run in parallel and stay
/// deterministic whatever the thread count.
pub fn rng_indexed(base: u64, stream: &str, index: u64) -> ChaCha8Rng {
    let mut r = rng(base, stream);
    r.set_stream(index);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn fnv1a_matches_reference_vectors() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn splitmix64_matches_reference() {
        // First output of the reference splitmix64 generator seeded with 0.
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn derived_seeds_are_distinct_and_pinned() {
        let a = derive_seed(42, "synth");
        assert_eq!(a, derive_seed(42, "synth"));
        assert_ne!(a, derive_seed(42, "negatives"));
        assert_ne!(a, derive_seed(43, "synth"));
        assert_ne!(
            derive_seed(0, "shuffle/epoch1"),
            derive_seed(0, "shuffle/epoch2")
        );
        // Pinned so an accidental change of the algorithm fails loudly.
        assert_eq!(a, 0x9e29_999d_cc9d_64b7);
    }

    #[test]
    fn rngs_are_reproducible_and_streams_differ() {
        let (mut r1, mut r2) = (rng(7, "s"), rng(7, "s"));
        let x: Vec<u64> = (0..4).map(|_| r1.next_u64()).collect();
        let y: Vec<u64> = (0..4).map(|_| r2.next_u64()).collect();
        assert_eq!(x, y);
        let mut a = rng_indexed(7, "s", 1);
        let mut b = rng_indexed(7, "s", 2);
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
