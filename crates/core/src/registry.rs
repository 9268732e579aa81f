//! The model registry: register by name, build by name, list. The trainer and the CLI only ever
//! see models through it, so an outside crate adds a model without forking.

use crate::error::{CoreError, Result};
use crate::model::{BuildContext, Model};
use std::collections::BTreeMap;

/// Builds a model from the feature map, its params table and a device.
pub type ModelBuilder = Box<dyn Fn(&BuildContext) -> Result<Box<dyn Model>> + Send + Sync>;

struct Entry {
    description: String,
    builder: ModelBuilder,
}

#[derive(Default)]
pub struct Registry {
    entries: BTreeMap<String, Entry>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a model. A name registered twice is an error listing the registered names.
    pub fn register(
        &mut self,
        name: &str,
        description: &str,
        builder: impl Fn(&BuildContext) -> Result<Box<dyn Model>> + Send + Sync + 'static,
    ) -> Result<()> {
        if self.entries.contains_key(name) {
            return Err(CoreError::Registry(format!(
                "model '{name}' is already registered (registered: {})",
                self.names().join(", ")
            )));
        }
        self.entries.insert(
            name.to_string(),
            Entry {
                description: description.to_string(),
                builder: Box::new(builder),
            },
        );
        Ok(())
    }

    /// Fails with the list of registered names when `name` is unknown.
    pub fn check(&self, name: &str) -> Result<()> {
        if self.entries.contains_key(name) {
            Ok(())
        } else {
            Err(CoreError::Registry(format!(
                "unknown model '{name}'; registered models: {}",
                self.names().join(", ")
            )))
        }
    }

    pub fn build(&self, name: &str, ctx: &BuildContext) -> Result<Box<dyn Model>> {
        self.check(name)?;
        (self.entries[name].builder)(ctx)
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// `(name, description)` pairs, sorted by name.
    pub fn list(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .map(|(n, e)| (n.clone(), e.description.clone()))
            .collect()
    }
}
