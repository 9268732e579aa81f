//! Benchmarks measured beside their peers: the training step of every registered model
//! ([`step`]), with the suite, the quality gate and the comparison built on it.

pub mod gate;
pub mod report;
pub mod step;
pub mod suite;
pub mod twin;
pub mod workers;
