//! Helpers shared by the models' unit tests.

use longtail_core::data::HostBatch;
use longtail_core::tch::{nn, Device, Kind, Tensor};
use longtail_core::DeviceBatch;
use longtail_core::{params, BuildContext, ModelSpec};

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

/// A model built for a unit test, with the variable store the engine would own.
pub struct Built<M> {
    pub m: M,
    pub vs: nn::VarStore,
}

impl<M> std::ops::Deref for Built<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.m
    }
}

impl<M> std::ops::DerefMut for Built<M> {
    fn deref_mut(&mut self) -> &mut M {
        &mut self.m
    }
}

impl<M: longtail_core::Phases> Built<M> {
    pub fn set_phase(&mut self, phase: &str) -> longtail_core::Result<()> {
        self.m.set_phase(&self.vs, phase)
    }
}

/// Builds model `M` from `ctx` as the registry does (params parsed and validated, a fresh
/// `VarStore`), keeping the concrete type for tests of its internals.
pub fn build<M: ModelSpec>(ctx: &BuildContext) -> longtail_core::Result<Built<M>> {
    let p = params::parse::<M::Params>(M::NAME, ctx.params)?;
    build_with(ctx, |root| M::build(root, p, ctx))
}

/// [`build`] for a model built by a function of its own (ComiRec's two variants).
pub fn build_with<M>(
    ctx: &BuildContext,
    f: impl FnOnce(&nn::Path) -> longtail_core::Result<M>,
) -> longtail_core::Result<Built<M>> {
    let vs = nn::VarStore::new(ctx.device);
    let m = f(&vs.root())?;
    Ok(Built { m, vs })
}
