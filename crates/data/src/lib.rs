//! longtail-data: the host-side data pipeline of longtail (no libtorch).
//!
//! The canonical interaction table ([`Interactions`]) with Parquet I/O, the feature map that models
//! size themselves from ([`FeatureMap`]), the synthetic multi-interest generator of the IDW paper
//! ([`synth`]), activeness groups ([`groups`]), pointwise CTR samples with sampled negatives and
//! splits ([`ctr`]), importers of raw public rating logs ([`mod@import`], timestamps in
//! [`timestamp`]), item side features
//! ([`items`]), HIM time-window sessions ([`sessions`]), IDW fixed-length sequences
//! ([`sequences`]), the `prepare` job that writes all of it to a folder ([`mod@prepare`]), and
//! fixed-shape host batches for the training loop ([`batch`]).
//!
//! Every random choice is driven by one user seed through named streams ([`seed`]), so the same
//! seed gives the same data on every machine.

pub mod atomic;
pub mod batch;
pub mod config_file;
pub mod ctr;
pub mod error;
pub mod feature_map;
pub mod filter;
pub mod frame;
pub mod groups;
pub mod import;
pub mod items;
pub mod memory;
pub mod outputs;
pub mod prepare;
pub mod retrieval;
pub mod scores;
pub mod seed;
pub mod sequences;
pub mod sessions;
pub mod source;
pub mod stats;
pub mod synth;
pub mod table;
pub mod timestamp;

pub use batch::{BatchIter, HostBatch};
pub use ctr::{build_ctr_dataset, CtrConfig, CtrDataset, CtrSamples, SplitRule, UserSequences};
pub use error::{DataError, Result};
pub use feature_map::{FeatureKind, FeatureMap, FeatureSpec};
pub use filter::{apply_filters, DuplicateRule, FilterConfig, FilterReport, Filtered};
pub use frame::{Column, Frame, FrameReader, FrameWriter};
pub use groups::{
    ActivenessMode, ActivenessRule, ItemGroup, UserGroup, ITEM_GROUP_NAMES, USER_GROUP_NAMES,
};
pub use import::{
    import, import_with, movielens_genres, read_vocab, ColumnMapping, ImportFormat, Imported,
    RowOrder, TimestampFormat, TimestampUnit,
};
pub use items::{CategoricalField, ItemFeatures, ItemTable, ListField};
pub use prepare::{
    load_prepared_ctr, load_prepared_sequences, prepare, PrepareConfig, PrepareManifest,
    PreparedSequences,
};
pub use retrieval::{RetrievalData, SeqBatches};
pub use scores::ScoresTable;
pub use sequences::{build_sequences, SeqDataset, SeqSamples, SequenceConfig, TrainCut};
pub use sessions::{SessionBatch, SessionConfig, SessionSlots, Sessions};
pub use source::{load_source, real_data_dir, DataSource, ItemSource, Loaded};
pub use stats::{activity_counts, dataset_stats, DatasetStats};
pub use synth::{generate, SynthConfig, SynthData};
pub use table::Interactions;
