//! Helpers shared by the models' unit tests.

use longtail_core::data::HostBatch;
use longtail_core::tch::{Device, Kind, Tensor};
use longtail_core::DeviceBatch;

/// A params table from TOML text.
pub fn table(s: &str) -> toml::Table {
    toml::from_str(s).unwrap()
}

/// A CPU batch of user 2 with targets `items` (label 1) and histories `hist` (0 = padding).
pub fn batch(items: &[i64], hist: &[Vec<i64>]) -> DeviceBatch {
    let n = hist.len();
    let h = HostBatch::from_dense(vec![2; n], items.to_vec(), vec![1.0; n], hist).unwrap();
    DeviceBatch::from_host(&h, Device::Cpu).unwrap()
}

/// A 2-D tensor as rows of f32.
pub fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    Vec::<Vec<f32>>::try_from(t.to_kind(Kind::Float)).unwrap()
}

/// Any tensor as a flat f32 vector.
pub fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.flatten(0, -1).to_kind(Kind::Float)).unwrap()
}

/// Same length and every pair within 1e-5.
pub fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
}
