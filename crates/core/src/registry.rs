//! The model registry: register by name, build by name, list. The trainer and the CLI only ever
//! see models through it, so an outside crate adds a model without forking.

use crate::error::{CoreError, Result};
use crate::model::{BuildContext, Model};
use crate::params::{self, ModelParams};
use std::collections::BTreeMap;

/// Builds a model from the feature map, its params table and a device.
pub type ModelBuilder = Box<dyn Fn(&BuildContext) -> Result<Box<dyn Model>> + Send + Sync>;

/// What the registry knows of a params table without building the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamsInfo {
    /// The loss terms a model with these params returns.
    pub loss_terms: Vec<String>,
    /// Every param with its value, defaults filled in (what the model will use).
    pub effective: serde_json::Value,
}

/// Parses and range-checks a params table without building anything.
type ParamsCheck = Box<dyn Fn(&str, &toml::Table) -> Result<ParamsInfo> + Send + Sync>;

struct Entry {
    description: String,
    builder: ModelBuilder,
    /// Present for models registered with their params type ([`Registry::register_model`]).
    check: Option<ParamsCheck>,
}

#[derive(Default)]
pub struct Registry {
    entries: BTreeMap<String, Entry>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a model together with its params type, so a config's `[model.params]` and
    /// `loss_weights` are checked before any data is read ([`Registry::check_params`]). A name
    /// registered twice is an error listing the registered names.
    pub fn register_model<P: ModelParams + 'static>(
        &mut self,
        name: &str,
        description: &str,
        builder: impl Fn(&BuildContext) -> Result<Box<dyn Model>> + Send + Sync + 'static,
    ) -> Result<()> {
        self.insert(
            name,
            description,
            Box::new(builder),
            Some(Box::new(|model: &str, table: &toml::Table| {
                let p = params::parse::<P>(model, table)?;
                let effective = serde_json::to_value(&p).map_err(|e| CoreError::Params {
                    model: model.to_string(),
                    key: "<params>".into(),
                    message: format!("cannot show the params: {e}"),
                })?;
                Ok(ParamsInfo {
                    loss_terms: p.loss_terms(),
                    effective,
                })
            })),
        )
    }

    /// Adds a model whose params are only checked when it is built (prefer
    /// [`Registry::register_model`]). A name registered twice is an error.
    pub fn register(
        &mut self,
        name: &str,
        description: &str,
        builder: impl Fn(&BuildContext) -> Result<Box<dyn Model>> + Send + Sync + 'static,
    ) -> Result<()> {
        self.insert(name, description, Box::new(builder), None)
    }

    fn insert(
        &mut self,
        name: &str,
        description: &str,
        builder: ModelBuilder,
        check: Option<ParamsCheck>,
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
                builder,
                check,
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

    /// Checks `params` for model `name` without building it: unknown keys, wrong types and
    /// out-of-range values are errors naming the key. Returns the model's loss terms, or `None`
    /// for a model registered without its params type (checked only when built).
    pub fn check_params(&self, name: &str, params: &toml::Table) -> Result<Option<Vec<String>>> {
        Ok(self.params_info(name, params)?.map(|i| i.loss_terms))
    }

    /// [`Registry::check_params`] with the effective params (defaults filled in), for manifests,
    /// `longtail models NAME` and benchmark twins; `None` for a model registered without its
    /// params type.
    pub fn params_info(&self, name: &str, params: &toml::Table) -> Result<Option<ParamsInfo>> {
        self.check(name)?;
        match &self.entries[name].check {
            Some(c) => c(name, params).map(Some),
            None => Ok(None),
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
