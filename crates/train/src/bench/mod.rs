//! Benchmarks measured beside their peers: the training step of every registered model
//! ([`step`]), with the suite, the quality gate and the comparison built on it.

pub mod step;
pub mod twin;
pub mod workers;
