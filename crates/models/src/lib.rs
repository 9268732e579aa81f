//! longtail-models: the built-in models. Each module holds one model, registered by type
//! (`registry.add::<Din>()`, see `longtail_core::ModelSpec`); [`register_builtin`] adds them all.

pub mod basemodel;
mod checks;
pub mod comirec;
pub mod dien;
pub mod din;
pub mod gru4rec;
pub mod him;
pub mod lr;
pub mod mfn;
pub mod mind;
pub mod pin;
pub mod popularity;
pub mod routing;
#[cfg(test)]
mod test_util;
pub mod transformerrec;
pub mod twotower;

use longtail_core::{Registry, Result};

/// Adds every built-in model to `registry`.
pub fn register_builtin(registry: &mut Registry) -> Result<()> {
    registry.add::<basemodel::BaseModel>()?;
    registry.add::<popularity::Popularity>()?;
    registry.add::<lr::Lr>()?;
    registry.add::<gru4rec::Gru4Rec>()?;
    registry.add::<din::Din>()?;
    registry.add::<dien::Dien>()?;
    registry.add::<him::Him>()?;
    registry.add::<mind::Mind>()?;
    comirec::register(registry)?;
    registry.add::<transformerrec::TransformerRec>()?;
    registry.add::<mfn::Mfn>()?;
    registry.add::<twotower::TwoTower>()?;
    registry.add::<pin::Pin>()?;
    Ok(())
}

/// A registry holding the built-in models.
pub fn builtin_registry() -> Result<Registry> {
    let mut r = Registry::new();
    register_builtin(&mut r)?;
    Ok(r)
}
