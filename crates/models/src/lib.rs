//! longtail-models: the built-in models. Each module holds one model and a `register` function;
//! [`register_builtin`] adds them all to a registry.

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
    basemodel::register(registry)?;
    popularity::register(registry)?;
    lr::register(registry)?;
    gru4rec::register(registry)?;
    din::register(registry)?;
    dien::register(registry)?;
    him::register(registry)?;
    mind::register(registry)?;
    comirec::register(registry)?;
    transformerrec::register(registry)?;
    mfn::register(registry)?;
    twotower::register(registry)?;
    pin::register(registry)?;
    Ok(())
}

/// A registry holding the built-in models.
pub fn builtin_registry() -> Result<Registry> {
    let mut r = Registry::new();
    register_builtin(&mut r)?;
    Ok(r)
}
