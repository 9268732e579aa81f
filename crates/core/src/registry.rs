//! The model registry: register by name, build by name, list. The trainer and the CLI only ever
//! see models through it, so an outside crate adds a model without forking.

use crate::error::{CoreError, Result};
use crate::model::{BuildContext, Instance, Model};
use crate::params::{self, ModelParams, ParamChoice, ParamDoc};
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
    docs: fn() -> Vec<ParamDoc>,
}

/// A model as `longtail models NAME` shows it: every param with its default and the doc comment
/// from its params struct ([`crate::ParamDocs`]), and the loss terms of the defaults.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelDescription {
    pub name: String,
    pub description: String,
    pub params: Vec<ParamDescription>,
    /// The loss terms the default params return (`[train] loss_weights` keys); empty when the
    /// defaults do not validate on their own.
    pub loss_terms: Vec<String>,
}

/// One param: its config key, Rust type, default (absent when the default is "unset") and docs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ParamDescription {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub default: Option<serde_json::Value>,
    pub doc: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<ParamChoice>,
}

impl ModelDescription {
    /// The description as text: one block per param, its doc comment wrapped under it.
    pub fn render_text(&self) -> String {
        let mut out = format!("{}: {}\n", self.name, self.description);
        if self.params.is_empty() {
            out.push_str("\nno [model.params]\n");
        } else {
            out.push_str("\n[model.params] (key = default  type)\n");
        }
        for p in &self.params {
            let default = match &p.default {
                Some(v) => json_as_toml(v),
                None => "unset".to_string(),
            };
            out.push_str(&format!("\n  {} = {}  ({})\n", p.name, default, p.ty));
            for para in p.doc.split('\n') {
                out.push_str(&wrap(para, "      ", 96));
            }
            for c in &p.choices {
                let line = if c.doc.is_empty() {
                    format!("\"{}\"", c.word)
                } else {
                    format!("\"{}\": {}", c.word, c.doc)
                };
                out.push_str(&wrap(&line, "      - ", 96));
            }
        }
        if !self.loss_terms.is_empty() {
            out.push_str(&format!(
                "\nloss terms (with the defaults): {}\n",
                self.loss_terms.join(", ")
            ));
        }
        out
    }
}

/// A JSON value in TOML spelling (strings quoted, arrays in brackets).
fn json_as_toml(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("{s:?}"),
        serde_json::Value::Array(a) => {
            format!(
                "[{}]",
                a.iter().map(json_as_toml).collect::<Vec<_>>().join(", ")
            )
        }
        other => other.to_string(),
    }
}

/// Greedy word wrap; continuation lines are indented like the first.
fn wrap(text: &str, first_indent: &str, width: usize) -> String {
    let indent = " ".repeat(first_indent.chars().count());
    let mut out = String::new();
    let mut line = first_indent.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = indent.clone();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    if !empty {
        out.push_str(&line);
        out.push('\n');
    }
    out
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
                docs: P::fields,
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

    /// Model `name` with every param's default and doc comment, for `longtail models NAME`.
    pub fn describe(&self, name: &str) -> Result<ModelDescription> {
        self.check(name)?;
        let entry = &self.entries[name];
        let defaults = (entry.check)(name, &toml::Table::new()).ok();
        let params = (entry.docs)()
            .into_iter()
            .map(|d| ParamDescription {
                name: d.name.to_string(),
                ty: d.ty.to_string(),
                default: defaults
                    .as_ref()
                    .and_then(|i| i.effective.get(d.name))
                    .filter(|v| !v.is_null())
                    .cloned(),
                doc: d.doc.to_string(),
                choices: d.choices,
            })
            .collect();
        Ok(ModelDescription {
            name: name.to_string(),
            description: entry.description.clone(),
            params,
            loss_terms: defaults.map(|i| i.loss_terms).unwrap_or_default(),
        })
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
