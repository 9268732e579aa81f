//! One seed drives tch and every host RNG (host RNGs derive named streams in longtail-data).

/// Seeds libtorch's CPU and CUDA generators. Host RNGs use `longtail_data::seed::rng(seed, stream)`.
pub fn seed_everything(seed: u64) {
    // tch takes an i64; the bit pattern is what matters.
    tch::manual_seed(seed as i64);
    if tch::Cuda::is_available() {
        tch::Cuda::manual_seed_all(seed);
    }
}
