//! The generator state round trip, alone in its own test binary: libtorch's default generator is
//! process-wide, and a test drawing from it on another thread would interleave with these draws.

use longtail_core::state::{rng_state, set_rng_state};
use tch::{Device, Kind, Tensor};

/// Draws after restoring a saved state repeat the draws made after it was saved.
#[test]
fn cpu_generator_state_round_trips() {
    tch::manual_seed(11);
    let _ = Tensor::randn([3], (Kind::Float, Device::Cpu));
    let saved = rng_state(Device::Cpu).unwrap();
    let a = Tensor::randn([5], (Kind::Float, Device::Cpu));
    let _ = Tensor::randint(10, [7], (Kind::Int64, Device::Cpu));
    set_rng_state(Device::Cpu, &saved).unwrap();
    let b = Tensor::randn([5], (Kind::Float, Device::Cpu));
    assert!(a.equal(&b));
    let c = Tensor::randn([5], (Kind::Float, Device::Cpu));
    assert!(!a.equal(&c));
}
