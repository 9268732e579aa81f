//! The model registry: register by name, build by name, list. The trainer and the CLI only ever
//! see models through it, so an outside crate adds a model without forking.

use crate::error::{CoreError, Result};
use crate::model::{BuildContext, Instance, Model};
use crate::params::{self, ModelParams};
use std::collections::BTreeMap;
use tch::nn;

/// A model the registry can build by type: `registry.add::<Din>()`. The registry parses and
/// validates `[model.params]` into `Params` (before any data is read, and again at build time),
/// creates the `VarStore` (the engine owns it, see [`Instance`]) and calls `build` under its root.
pub trait ModelSpec: Model + Sized + 'static {
    /// The registry name (`[model] name` in a config).
    const NAME: &'static str;
    /// One line for `longtail models`.
    const DESCRIPTION: &'static str;
    /// The typed `[model.params]`.
    type Params: ModelParams;
    /// Builds the model's layers under `root`, sized from the feature map in `ctx`.
    fn build(root: &nn::Path, params: Self::Params, ctx: &BuildContext) -> Result<Self>;
}

/// Builds a model (its params already parsed and validated) under a root path.
type Builder = Box<dyn Fn(&str, &BuildContext) -> Result<Instance> + Send + Sync>;

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
    builder: Builder,
    check: ParamsCheck,
}

#[derive(Default)]
pub struct Registry {
    entries: BTreeMap<String, Entry>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds model `M` under [`ModelSpec::NAME`]. A name registered twice is an error listing the
    /// registered names.
    pub fn add<M: ModelSpec>(&mut self) -> Result<()> {
        self.register_model::<M::Params>(M::NAME, M::DESCRIPTION, |root, p, ctx| {
            Ok(Box::new(M::build(root, p, ctx)?))
        })
    }

    /// Adds a model under `name` with its params type and a builder: for one type registered
    /// under several names (ComiRec-DR and -SA) or a builder that picks the type. Prefer
    /// [`Registry::add`]. A config's `[model.params]` and `loss_weights` are checked before any
    /// data is read ([`Registry::check_params`]).
    pub fn register_model<P: ModelParams + 'static>(
        &mut self,
        name: &str,
        description: &str,
        builder: impl Fn(&nn::Path, P, &BuildContext) -> Result<Box<dyn Model>> + Send + Sync + 'static,
    ) -> Result<()> {
        if self.entries.contains_key(name) {
            return Err(CoreError::Registry(format!(
                "model '{name}' is already registered (registered: {})",
                self.names().join(", ")
            )));
        }
        let build: Builder = Box::new(move |model: &str, ctx: &BuildContext| {
            let p = params::parse::<P>(model, ctx.params)?;
            Instance::build(model, ctx.device, |root| builder(root, p, ctx))
        });
        let check: ParamsCheck = Box::new(|model: &str, table: &toml::Table| {
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
        });
        self.entries.insert(
            name.to_string(),
            Entry {
                description: description.to_string(),
                builder: build,
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
    /// out-of-range values are errors naming the key. Returns the model's loss terms.
    pub fn check_params(&self, name: &str, params: &toml::Table) -> Result<Vec<String>> {
        Ok(self.params_info(name, params)?.loss_terms)
    }

    /// [`Registry::check_params`] with the effective params (defaults filled in), for manifests,
    /// `longtail models NAME` and benchmark twins.
    pub fn params_info(&self, name: &str, params: &toml::Table) -> Result<ParamsInfo> {
        self.check(name)?;
        (self.entries[name].check)(name, params)
    }

    /// Builds model `name` from `ctx` (its params table, feature map, device): the model and a
    /// fresh `VarStore` holding its variables.
    pub fn build(&self, name: &str, ctx: &BuildContext) -> Result<Instance> {
        self.check(name)?;
        (self.entries[name].builder)(name, ctx)
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
