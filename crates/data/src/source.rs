//! Where a dataset comes from: the `[data]` section shared by `longtail prepare` and
//! `longtail train` configs, and the loader that turns it into an interaction table.
//!
//! A raw source's `columns` is a [`ColumnMapping`] (an inline table such as
//! `columns = { user = "userId", item = "movieId", timestamp = "ts", timestamp_unit = "ms" }`, or
//! `order = "file"` instead of `timestamp` for a log without times), and its optional `items` an
//! [`ItemSource`]: one of the three fixed item-file formats, or a generic table
//! (`items = { format = "table", path = "items.csv", id = "item_id", columns = ["genre"],
//! lists = { genres = "|" } }`, see [`ItemTable`]). `longtail import --items F --items-format K`
//! builds the same [`ItemSource`] with [`ItemSource::from_format_name`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::import::{import_with, ColumnMapping, ImportFormat};
use crate::items::{
    amazon_item_features, movielens_100k_item_features, movielens_item_features,
    table_item_features, ItemFeatures, ItemTable,
};
use crate::synth::{generate, SynthConfig};
use crate::table::Interactions;

/// Where the interactions come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSource {
    /// The built-in synthetic generator (IDW Appendix A with long-tailed user activeness).
    Synth {
        #[serde(default)]
        synth: SynthConfig,
    },
    /// A canonical interaction table in Parquet (see `longtail import`), optionally with its
    /// item feature table (`items`, e.g. the `OUT.items.parquet` that `import --items` wrote).
    Parquet {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        items: Option<PathBuf>,
    },
    /// A raw log imported on the fly (`format` as in `longtail import`; the `csv` and `parquet`
    /// formats need `columns`). A relative `path` is looked up under `$LONGTAIL_DATA_DIR`
    /// (default `../shared/data`).
    Raw {
        format: String,
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        columns: Option<ColumnMapping>,
        /// Item side features read from a raw item file, matched by raw item id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        items: Option<ItemSource>,
    },
    /// A folder written by `longtail prepare` (its samples are used as they are; `train` only).
    Prepared { path: PathBuf },
}

/// A raw item-feature file (see [`crate::items`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ItemSource {
    /// MovieLens-1M / MovieTweetings `movies.dat`: `genres` list.
    MovielensMovies { path: PathBuf },
    /// MovieLens-100K `u.item`: `genres` list from the genre flags.
    Movielens100k { path: PathBuf },
    /// Amazon metadata JSON lines: `category`, `brand`, `price_bucket`, `attributes`.
    AmazonMeta {
        path: PathBuf,
        #[serde(default = "default_price_buckets")]
        price_buckets: usize,
    },
    /// A generic headered CSV or Parquet table (`format = "table"`): an id column and
    /// categorical / list columns ([`ItemTable`], [`table_item_features`]).
    Table(ItemTable),
}

fn default_price_buckets() -> usize {
    10
}

impl ItemSource {
    /// The names [`ItemSource::from_format_name`] accepts (the `format` values of a config).
    pub const FORMAT_NAMES: [&'static str; 4] =
        ["movielens-movies", "movielens-100k", "amazon-meta", "table"];

    /// The item source of `longtail import --items PATH --items-format NAME`: `NAME` is one of
    /// [`ItemSource::FORMAT_NAMES`]; `price_buckets` is used by `amazon-meta` only; `table_spec`
    /// is required by `table` and refused by the others: the table's columns in the form of
    /// [`ItemTable::from_spec`] (`id=item_id,columns=genre;brand,lists=genres:pipe`, or a JSON
    /// object). Errors are [`DataError::Config`] (key `items_format`, or `items` for the spec).
    pub fn from_format_name(
        name: &str,
        path: &Path,
        price_buckets: usize,
        table_spec: Option<&str>,
    ) -> Result<ItemSource> {
        let path = path.to_path_buf();
        if name != "table" && table_spec.is_some() && Self::FORMAT_NAMES.contains(&name) {
            return Err(DataError::config(
                "items_format",
                format!(
                    "items format '{name}' has fixed columns; a column spec is only for the \
                     'table' format"
                ),
            ));
        }
        Ok(match name {
            "movielens-movies" => ItemSource::MovielensMovies { path },
            "movielens-100k" => ItemSource::Movielens100k { path },
            "amazon-meta" => ItemSource::AmazonMeta {
                path,
                price_buckets,
            },
            "table" => {
                let Some(spec) = table_spec else {
                    return Err(DataError::config(
                        "items_format",
                        "items format 'table' needs its columns: id=COL[,columns=A;B]\
                         [,lists=COL:SEP][,delimiter=C] (COL = the item id column)",
                    ));
                };
                ItemSource::Table(ItemTable::from_spec(&path, spec)?)
            }
            other => {
                return Err(DataError::config(
                    "items_format",
                    format!(
                        "unknown items format '{other}' (valid: {})",
                        Self::FORMAT_NAMES.join(", ")
                    ),
                ))
            }
        })
    }

    /// Reads the features for the items of `item_vocab` (raw id per dense id), with the path
    /// resolved as configs resolve it ([`resolve_data_path`]).
    pub fn load(&self, item_vocab: &[String]) -> Result<ItemFeatures> {
        self.with_path(resolve_data_path(self.path()))
            .read(item_vocab)
    }

    /// Like [`ItemSource::load`], reading the path exactly as given (what `longtail import`
    /// does with `--items`).
    pub fn read(&self, item_vocab: &[String]) -> Result<ItemFeatures> {
        match self {
            ItemSource::MovielensMovies { path } => movielens_item_features(path, item_vocab),
            ItemSource::Movielens100k { path } => movielens_100k_item_features(path, item_vocab),
            ItemSource::AmazonMeta {
                path,
                price_buckets,
            } => amazon_item_features(path, item_vocab, *price_buckets),
            ItemSource::Table(t) => table_item_features(t, item_vocab),
        }
    }

    /// The same source reading `path`.
    pub fn with_path(&self, path: PathBuf) -> ItemSource {
        let mut out = self.clone();
        match &mut out {
            ItemSource::MovielensMovies { path: p }
            | ItemSource::Movielens100k { path: p }
            | ItemSource::AmazonMeta { path: p, .. } => *p = path,
            ItemSource::Table(t) => t.path = path,
        }
        out
    }
}

impl DataSource {
    /// Checks the keys of a raw source against each other before anything is read: its column
    /// mapping ([`ColumnMapping::validate`]: a `timestamp` or `order = "file"`, not both) and a
    /// generic item table's keys ([`ItemTable::validate`]). Other sources have nothing to check
    /// here.
    pub fn validate(&self) -> Result<()> {
        if let DataSource::Raw { columns, items, .. } = self {
            if let Some(c) = columns {
                c.validate()?;
            }
            if let Some(ItemSource::Table(t)) = items {
                t.validate()?;
            }
        }
        Ok(())
    }

    /// The files and folders this source reads (resolved as the loader resolves them): what no
    /// output of a job on it may replace.
    pub fn input_paths(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        match self {
            DataSource::Synth { .. } => {}
            DataSource::Parquet { path, items } => {
                v.push(resolve_data_path(path));
                v.extend(items.iter().map(|p| resolve_data_path(p)));
            }
            DataSource::Raw { path, items, .. } => {
                v.push(resolve_data_path(path));
                if let Some(i) = items {
                    v.push(resolve_data_path(i.path()));
                }
            }
            DataSource::Prepared { path } => v.push(resolve_data_path(path)),
        }
        v
    }
}

impl ItemSource {
    /// The item file's path as written in the config.
    pub fn path(&self) -> &Path {
        match self {
            ItemSource::MovielensMovies { path }
            | ItemSource::Movielens100k { path }
            | ItemSource::AmazonMeta { path, .. } => path,
            ItemSource::Table(t) => &t.path,
        }
    }
}

/// `origin, line N` for a TOML error with a position (else `origin`): where config errors point.
pub fn toml_error_origin(text: &str, origin: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(s) => {
            // Count newlines in bytes: a position inside a multi-byte character cannot panic.
            let end = s.start.min(text.len());
            let line = text.as_bytes()[..end]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            format!("{origin}, line {line}")
        }
        None => origin.to_string(),
    }
}

/// A bad value or key inside `[data.synth]`, found again with its key and line. `DataSource` is an
/// internally tagged enum, so toml reports such an error at the `[data]` header, without the key;
/// this re-reads the generator's table alone. `None` when the error is not there.
pub fn synth_section_error(text: &str, origin: &str) -> Option<(String, String)> {
    let doc: toml::Table = toml::from_str(text).ok()?;
    let data = doc.get("data")?.as_table()?;
    if data.get("kind")?.as_str()? != "synth" {
        return None;
    }
    // Re-read as a document of its own: a plain struct keeps toml's spans, so the error's line
    // there names the key.
    let sub = toml::to_string(data.get("synth")?.as_table()?).ok()?;
    let err = toml::from_str::<SynthConfig>(&sub).err()?;
    let message = err.message().trim().to_string();
    let key = match err.span() {
        Some(span) => {
            let start = sub[..span.start.min(sub.len())]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            sub[start..].split('=').next()?.trim().to_string()
        }
        None => message.split('`').nth(1)?.to_string(),
    };
    let text_line = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != format!("in `{key}`"))
        .collect::<Vec<_>>()
        .join(" ");
    // The key's line: after a `[data.synth]` header, or on a `synth = { .. }` line.
    let mut in_synth = false;
    let mut line = None;
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with('[') {
            in_synth = t.trim_start_matches('[').trim_end_matches(']').trim() == "data.synth";
            continue;
        }
        let is_key = |s: &str| {
            s.strip_prefix(key.as_str())
                .is_some_and(|r| r.trim_start().starts_with('='))
        };
        if (in_synth && is_key(t))
            || (t.starts_with("synth") && t.split([',', '{']).any(|p| is_key(p.trim())))
        {
            line = Some(i + 1);
            break;
        }
    }
    let at = match line {
        Some(n) => format!("{origin}, line {n}"),
        None => origin.to_string(),
    };
    Some((at, format!("data.synth.{key}: {text_line}")))
}

/// Where real datasets live: `$LONGTAIL_DATA_DIR`, default `../shared/data`.
pub fn real_data_dir() -> PathBuf {
    std::env::var_os("LONGTAIL_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data"))
}

/// `path` as given when absolute, else under [`real_data_dir`].
pub fn resolve_data_path(path: &Path) -> PathBuf {
    if path.is_relative() && !path.exists() {
        real_data_dir().join(path)
    } else {
        path.to_path_buf()
    }
}

/// A loaded source: the table and, for imports, the raw ids behind the dense ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub interactions: Interactions,
    /// Raw user id per dense user id (entry 0 = "" for padding), when the source had raw ids.
    pub user_vocab: Option<Vec<String>>,
    /// Raw item id per dense item id, when the source had raw ids.
    pub item_vocab: Option<Vec<String>>,
    /// The synthetic generator's ground-truth cluster per item (index = item id).
    pub item_cluster: Option<Vec<u32>>,
    /// Item side features (index = dense item id), when the source has them.
    pub items: Option<ItemFeatures>,
}

/// Loads (or generates, with the seed's "synth" stream) the interactions of `src`.
/// `Prepared` is not a raw source: it is an error here (read it with [`crate::prepare`]).
pub fn load_source(src: &DataSource, seed: u64) -> Result<Loaded> {
    match src {
        DataSource::Synth { synth } => {
            let data = generate(synth, crate::seed::derive_seed(seed, "synth"))?;
            Ok(Loaded {
                interactions: data.interactions,
                user_vocab: None,
                item_vocab: None,
                item_cluster: Some(data.item_cluster),
                items: None,
            })
        }
        DataSource::Parquet { path, items } => {
            let table = resolve_data_path(path);
            let interactions = Interactions::read_parquet(&table)?;
            // `longtail import` writes the raw ids beside the table: the run keeps them.
            let vocab = |suffix: &str, needed: usize| -> Result<Option<Vec<String>>> {
                let p = crate::outputs::beside(&table, suffix);
                if !p.is_file() {
                    return Ok(None);
                }
                let v = crate::import::read_vocab(&p)?;
                if v.len() < needed {
                    return Err(DataError::Schema {
                        path: p,
                        message: format!(
                            "has {} ids but {} uses ids up to {}: it is not this table's \
                             vocabulary",
                            v.len(),
                            table.display(),
                            needed.saturating_sub(1)
                        ),
                    });
                }
                Ok(Some(v))
            };
            let user_vocab = vocab("user_vocab.json", interactions.num_users())?;
            let item_vocab = vocab("item_vocab.json", interactions.num_items())?;
            let items = match items {
                Some(p) => {
                    let p = resolve_data_path(p);
                    let f = ItemFeatures::read_parquet(&p)?;
                    if f.num_items < interactions.num_items() {
                        return Err(DataError::Schema {
                            path: p,
                            message: format!(
                                "has {} item rows but the interactions use item ids up to {}",
                                f.num_items,
                                interactions.num_items() - 1
                            ),
                        });
                    }
                    Some(f)
                }
                None => None,
            };
            Ok(Loaded {
                interactions,
                user_vocab,
                item_vocab,
                item_cluster: None,
                items,
            })
        }
        DataSource::Raw {
            format,
            path,
            columns,
            items,
        } => {
            let format: ImportFormat = format
                .parse()
                .map_err(|e: DataError| DataError::config("data.format", e.to_string()))?;
            let imported = import_with(format, &resolve_data_path(path), columns.as_ref())?;
            let items = items
                .as_ref()
                .map(|s| s.load(&imported.item_vocab))
                .transpose()?;
            Ok(Loaded {
                items,
                interactions: imported.interactions,
                user_vocab: Some(imported.user_vocab),
                item_vocab: Some(imported.item_vocab),
                item_cluster: None,
            })
        }
        DataSource::Prepared { path } => Err(DataError::config(
            "data.kind",
            format!(
                "'prepared' ({}) is already prepared data: use it in a train config, or give \
                 prepare a raw, parquet or synth source",
                path.display()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synth_errors_name_their_key_and_line() {
        let text = "name = \"t\"\n[data]\nkind = \"synth\"\n[data.synth]\nusers = 100\n\
                    alpha = \"0.5\"\n[model]\nname = \"lr\"\n";
        let (at, m) = synth_section_error(text, "c.toml").unwrap();
        assert_eq!(at, "c.toml, line 6");
        assert!(
            m.starts_with("data.synth.alpha: ") && m.contains("string"),
            "{m}"
        );
        let inline = "[data]\nkind = \"synth\"\nsynth = { users = 100, itemz = 3 }\n";
        let (at, m) = synth_section_error(inline, "c.toml").unwrap();
        assert_eq!(at, "c.toml, line 3");
        assert!(m.starts_with("data.synth.itemz: "), "{m}");
        let ok = "[data]\nkind = \"synth\"\n[data.synth]\nusers = 100\n";
        assert!(synth_section_error(ok, "c.toml").is_none());
    }

    #[test]
    fn sources_parse_strictly() {
        let s: DataSource = toml::from_str(
            "kind = \"raw\"\nformat = \"movielens-tsv\"\npath = \"ml-100k/u.data\"\n",
        )
        .unwrap();
        assert!(matches!(s, DataSource::Raw { columns: None, .. }));
        let e = toml::from_str::<DataSource>(
            "kind = \"raw\"\nformat = \"x\"\npath = \"p\"\nbogus = 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = load_source(
            &DataSource::Raw {
                format: "nope".into(),
                path: "x".into(),
                columns: None,
                items: None,
            },
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("data.format") && e.contains("movielens-dat"),
            "{e}"
        );
    }

    #[test]
    fn item_table_sources_in_toml_and_from_format_name() {
        let text = "kind = \"raw\"\nformat = \"csv\"\npath = \"log.csv\"\n\
                    columns = { user = \"u\", item = \"i\", order = \"file\" }\n\
                    items = { format = \"table\", path = \"items.csv\", id = \"item_id\", \
                    columns = [\"genre\", \"brand\"], lists = { genres = \"|\" } }\n";
        let s: DataSource = toml::from_str(text).unwrap();
        let DataSource::Raw {
            columns: Some(c),
            items: Some(ItemSource::Table(t)),
            ..
        } = &s
        else {
            panic!("{s:?}");
        };
        assert_eq!(c, &ColumnMapping::in_file_order("u", "i"));
        assert_eq!(t.id, "item_id");
        assert_eq!(t.columns, Some(vec!["genre".into(), "brand".into()]));
        assert_eq!(t.lists["genres"], "|");
        assert_eq!(t.delimiter, ',');
        assert_eq!(
            s.input_paths()[1],
            resolve_data_path(Path::new("items.csv"))
        );
        s.validate().unwrap();
        let both = text.replace("order = \"file\"", "timestamp = \"t\", order = \"file\"");
        let e = toml::from_str::<DataSource>(&both)
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(
            matches!(&e, DataError::Config { key, .. } if key == "columns"),
            "{e}"
        );
        // Serialized and read back (as prepare.json records it).
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<DataSource>(&json).unwrap(), s);
        // Unknown keys of the table are errors.
        let e = toml::from_str::<DataSource>(&text.replace("lists =", "listz ="))
            .unwrap_err()
            .to_string();
        assert!(e.contains("listz"), "{e}");
        let e = toml::from_str::<DataSource>(&text.replace("id = \"item_id\", ", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`id`"), "{e}");
        // The CLI's names.
        let p = Path::new("items.csv");
        assert_eq!(
            ItemSource::from_format_name(
                "table",
                p,
                10,
                Some("id=item_id,columns=genre;brand,lists=genres:pipe")
            )
            .unwrap(),
            ItemSource::Table(t.clone())
        );
        assert_eq!(
            ItemSource::from_format_name("amazon-meta", p, 3, None).unwrap(),
            ItemSource::AmazonMeta {
                path: p.into(),
                price_buckets: 3
            }
        );
        assert_eq!(
            ItemSource::from_format_name("movielens-movies", p, 10, None).unwrap(),
            ItemSource::MovielensMovies { path: p.into() }
        );
        for (name, spec, what) in [
            ("table", None, "needs its columns"),
            (
                "movielens-100k",
                Some("id=a"),
                "only for the 'table' format",
            ),
            (
                "csv",
                None,
                "valid: movielens-movies, movielens-100k, amazon-meta, table",
            ),
        ] {
            let e = ItemSource::from_format_name(name, p, 10, spec).unwrap_err();
            assert!(
                matches!(&e, DataError::Config { key, .. } if key == "items_format")
                    && e.to_string().contains(what),
                "{what}: {e}"
            );
        }
    }

    #[test]
    fn raw_source_with_item_table_loads_end_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.csv");
        std::fs::write(&log, "user,item,ts\nu1,m2,2000-12-31\nu2,m1,978300760.0\n").unwrap();
        let items = dir.path().join("items.csv");
        std::fs::write(&items, "movieId,genres\nm1,Action|Comedy\nm3,Drama\n").unwrap();
        let mut table = ItemTable::new(&items, "movieId");
        table.lists.insert("genres".into(), "|".into());
        let src = DataSource::Raw {
            format: "csv".into(),
            path: log,
            columns: Some(ColumnMapping::new("user", "item", "ts")),
            items: Some(ItemSource::Table(table)),
        };
        let loaded = load_source(&src, 0).unwrap();
        assert_eq!(loaded.interactions.ts, vec![978_220_800, 978_300_760]);
        assert_eq!(loaded.item_vocab.as_deref().unwrap(), ["", "m2", "m1"]);
        let f = loaded.items.unwrap();
        let g = f.list("genres").unwrap();
        assert!(g.row(1).is_empty());
        assert_eq!(g.names_of(2), vec!["Action", "Comedy"]);
    }
}
