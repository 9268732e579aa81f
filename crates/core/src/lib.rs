//! longtail-core: the contracts every model and the trainer share, on libtorch (tch).
//!
//! Devices, the device batch, layers and loss kernels, the [`Model`] trait, the [`Registry`],
//! checkpoints in safetensors and the [`conformance`] check any model runs in one line.

// The derive's generated code names `::longtail_core::...`, in this crate's own tests too.
extern crate self as longtail_core;

pub mod attention;
pub mod batch;
pub mod checkpoint;
pub mod conformance;
pub mod density;
pub mod device;
pub mod error;
pub mod layers;
pub mod losses;
pub mod model;
pub mod numerics;
pub mod params;
pub mod registry;
pub mod runtime;
pub mod seed;
pub mod state;

pub use batch::{DeviceBatch, DeviceSessions};
pub use checkpoint::Pretrained;
pub use device::DeviceSpec;
pub use error::{CoreError, Result};
/// `#[derive(ParamDocs)]` on a params struct and its choice enums (see [`params::ParamDocs`]).
pub use longtail_derive::ParamDocs;
pub use model::{
    BuildContext, CtrLogits, Instance, Losses, Model, Output, Phases, Pretrain, PretrainLog, Task,
    Towers,
};
pub use params::{Check, ModelParams, ParamChoice, ParamDoc, ParamDocs};
pub use registry::{ModelDescription, ModelSpec, ParamDescription, ParamsInfo, Registry};

/// Re-exported so model crates see the same data types (feature map, host batch).
pub use longtail_data as data;
/// Re-exported so model crates use the exact pinned tch.
pub use tch;
