//! longtail-models: the built-in models. Each module holds one model and a `register` function;
//! [`register_builtin`] adds them all to a registry.

pub mod basemodel;

use longtail_core::{Registry, Result};

/// Adds every built-in model to `registry`.
pub fn register_builtin(registry: &mut Registry) -> Result<()> {
    basemodel::register(registry)?;
    Ok(())
}

/// A registry holding the built-in models.
pub fn builtin_registry() -> Result<Registry> {
    let mut r = Registry::new();
    register_builtin(&mut r)?;
    Ok(r)
}
