//! Config files as TOML documents, before they become typed configs: `include = [...]` resolved,
//! relative data paths anchored at the folder of the file that names them, and command-line
//! `--set KEY=VALUE` overrides. `longtail train`, `check` and `prepare` read every config
//! through [`read_config`], so the three rules are the same everywhere:
//!
//! - **include.** A top-level `include = ["../data/amazon-mi.toml"]` (a string or a list; paths
//!   relative to the including file's folder) merges those files first, in order, and the
//!   including file's own keys over them (tables merge key by key; any other value, arrays
//!   included, replaces). An included file may include others; a cycle, or more than
//!   [`MAX_INCLUDE_DEPTH`] levels, is an error naming the chain. A file of plain sections
//!   (`[data]`, `[filters]`, ...) included by a file of `[experiments.*]` blocks lands under its
//!   `[base]`, so one data file serves single-experiment configs, block files and prepare
//!   configs alike.
//! - **relative paths.** In every data section (`[data]`, `[base.data]`, `[experiments.*.data]`)
//!   a relative `path`, `items` or `items.path` that exists relative to the folder of the file
//!   that wrote it is rewritten to that location. Any other relative path is left as written and
//!   resolved later as before: from the working directory if it exists there, else under
//!   `$LONGTAIL_DATA_DIR` (default `../shared/data`), which is how the shipped configs name
//!   `ml-1m/ratings.dat`.
//! - **--set.** `train.lr=0.01`, `model.params.hidden=[64, 32]`, `model.name=din`: the value is
//!   read as a TOML value, else taken as a string; missing tables on the way are created. A key
//!   that does not exist in the typed config is then the usual unknown-key error.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// How deep `include` may nest.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// One config file read as a document.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigDoc {
    /// The merged document (includes resolved, paths anchored, `include` removed).
    pub table: toml::Table,
    /// The file as the user named it (for error messages).
    pub origin: String,
    /// The file's own text when it includes nothing: typed parsing of it then reports lines.
    pub text: Option<String>,
    /// Every file read, the config first, then its includes depth-first.
    pub files: Vec<PathBuf>,
}

/// Reads `path` with its includes (see the module docs).
pub fn read_config(path: &Path) -> Result<ConfigDoc> {
    let mut files = Vec::new();
    let (table, own_text) = read_rec(path, &mut Vec::new(), &mut files)?;
    Ok(ConfigDoc {
        table,
        origin: path.display().to_string(),
        text: own_text,
        files,
    })
}

/// Reads one file: its includes merged first, then its own keys. Returns its own text when it
/// included nothing.
fn read_rec(
    path: &Path,
    chain: &mut Vec<PathBuf>,
    files: &mut Vec<PathBuf>,
) -> Result<(toml::Table, Option<String>)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DataError::Invalid(format!("cannot read config {}: {e}", path.display())))?;
    let origin = path.display().to_string();
    let mut own: toml::Table = toml::from_str(&text).map_err(|e: toml::de::Error| {
        DataError::config(
            crate::source::toml_error_origin(&text, &origin, &e),
            e.message().trim(),
        )
    })?;
    let id = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if chain.contains(&id) {
        let names: Vec<String> = chain.iter().map(|p| p.display().to_string()).collect();
        return Err(DataError::config(
            format!("{origin}: include"),
            format!(
                "includes itself through {} -> {}",
                names.join(" -> "),
                id.display()
            ),
        ));
    }
    if chain.len() >= MAX_INCLUDE_DEPTH {
        return Err(DataError::config(
            format!("{origin}: include"),
            format!("includes nest more than {MAX_INCLUDE_DEPTH} levels deep"),
        ));
    }
    files.push(path.to_path_buf());
    let dir = path.parent().unwrap_or(Path::new(""));
    let before = own.clone();
    anchor_data_paths(&mut own, dir);
    // The raw text is the document only while no path was rewritten (typed errors then name
    // lines; otherwise they name keys, from the table).
    let own_text = (own == before).then_some(text);
    let includes = match own.remove("include") {
        None => return Ok((own, own_text)),
        Some(toml::Value::String(s)) => vec![s],
        Some(toml::Value::Array(a)) => a
            .into_iter()
            .map(|v| match v {
                toml::Value::String(s) => Ok(s),
                other => Err(DataError::config(
                    format!("{origin}: include"),
                    format!(
                        "must be a file name or a list of them, found {}",
                        other.type_str()
                    ),
                )),
            })
            .collect::<Result<_>>()?,
        Some(other) => {
            return Err(DataError::config(
                format!("{origin}: include"),
                format!(
                    "must be a file name or a list of them, found {}",
                    other.type_str()
                ),
            ))
        }
    };
    let blocks = own.contains_key("experiments");
    let mut merged = toml::Table::new();
    chain.push(id);
    for inc in includes {
        let p = dir.join(&inc);
        if !p.is_file() {
            chain.pop();
            return Err(DataError::config(
                format!("{origin}: include"),
                format!("'{inc}' is not a file ({} not found)", p.display()),
            ));
        }
        let (mut t, _) = read_rec(&p, chain, files)?;
        // A plain fragment included by a block file holds shared settings: they go in [base].
        if blocks && !t.contains_key("experiments") && !t.contains_key("base") {
            let mut b = toml::Table::new();
            b.insert("base".into(), toml::Value::Table(t));
            t = b;
        }
        merge(&mut merged, &t);
    }
    chain.pop();
    merge(&mut merged, &own);
    Ok((merged, None))
}

/// Deep merge: tables merge key by key; anything else in `over` replaces `base`.
pub fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Rewrites the relative data paths of `doc` that exist under `dir` to `dir/path`.
fn anchor_data_paths(doc: &mut toml::Table, dir: &Path) {
    let mut sections: Vec<&mut toml::Table> = Vec::new();
    let (mut base, mut exps, mut top) = (None, None, None);
    for (k, v) in doc.iter_mut() {
        match (k.as_str(), v) {
            ("data", toml::Value::Table(t)) => top = Some(t),
            ("base", toml::Value::Table(t)) => base = Some(t),
            ("experiments", toml::Value::Table(t)) => exps = Some(t),
            _ => {}
        }
    }
    sections.extend(top);
    if let Some(toml::Value::Table(d)) = base.and_then(|b| b.get_mut("data")) {
        sections.push(d);
    }
    if let Some(e) = exps {
        for (_, v) in e.iter_mut() {
            if let Some(toml::Value::Table(d)) = v.as_table_mut().and_then(|b| b.get_mut("data")) {
                sections.push(d);
            }
        }
    }
    for data in sections {
        anchor(data.get_mut("path"), dir);
        match data.get_mut("items") {
            Some(toml::Value::Table(items)) => anchor(items.get_mut("path"), dir),
            other => anchor(other, dir),
        }
    }
}

fn anchor(v: Option<&mut toml::Value>, dir: &Path) {
    if let Some(toml::Value::String(s)) = v {
        let p = Path::new(s.as_str());
        if p.is_relative() && !dir.as_os_str().is_empty() && dir.join(p).exists() {
            *s = dir.join(p).to_string_lossy().into_owned();
        }
    }
}

/// One `--set KEY=VALUE`, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The dotted key as given (`model.params.embedding_dim`).
    pub key: String,
    pub value: toml::Value,
}

impl std::str::FromStr for Assignment {
    type Err = DataError;

    /// `KEY=VALUE`; VALUE is a TOML value (`0.01`, `true`, `[64, 32]`, `"x"`, `{ a = 1 }`), else
    /// the text itself as a string (`model.name=din`).
    fn from_str(s: &str) -> Result<Self> {
        let bad = |m: &str| DataError::config(format!("--set {s}"), m.to_string());
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUE, e.g. train.lr=0.01"))?;
        let key = key.trim();
        if key.is_empty()
            || key.split('.').any(|p| {
                p.is_empty() || !p.chars().all(|c| c.is_alphanumeric() || "_-".contains(c))
            })
        {
            return Err(bad(
                "the key is dotted names of letters, digits, _ and -, e.g. model.params.embedding_dim",
            ));
        }
        let value = value.trim();
        let value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
            Ok(mut t) => t.remove("v").expect("parsed `v = ...`"),
            Err(_) => toml::Value::String(value.to_string()),
        };
        Ok(Assignment {
            key: key.to_string(),
            value,
        })
    }
}

impl Assignment {
    /// Sets the key in `doc`, creating missing tables; a key that crosses a value that is not a
    /// table is an error naming both.
    pub fn apply(&self, doc: &mut toml::Table) -> Result<()> {
        let parts: Vec<&str> = self.key.split('.').collect();
        let mut t = doc;
        for (i, part) in parts[..parts.len() - 1].iter().enumerate() {
            let entry = t
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            t = match entry {
                toml::Value::Table(inner) => inner,
                other => {
                    return Err(DataError::config(
                        format!("--set {}", self.key),
                        format!(
                            "'{}' is a {}, not a table",
                            parts[..=i].join("."),
                            other.type_str()
                        ),
                    ))
                }
            };
        }
        t.insert(parts[parts.len() - 1].to_string(), self.value.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn includes_merge_under_the_file_and_into_base_for_block_files() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "data/log.csv", "user,item,ts\n");
        write(
            d.path(),
            "data/shared.toml",
            "[data]\nkind = \"raw\"\nformat = \"csv\"\npath = \"log.csv\"\n[train]\nlr = 0.1\nepochs = 3\n",
        );
        let single = write(
            d.path(),
            "exp/one.toml",
            "include = \"../data/shared.toml\"\nname = \"x\"\n[train]\nlr = 0.5\n",
        );
        let doc = read_config(&single).unwrap();
        assert_eq!(doc.text, None);
        assert_eq!(doc.files.len(), 2);
        let train = doc.table["train"].as_table().unwrap();
        assert_eq!(train["lr"].as_float(), Some(0.5), "the file's own key wins");
        assert_eq!(train["epochs"].as_integer(), Some(3), "included keys stay");
        // The data path was relative to the included file's folder.
        let path = doc.table["data"]["path"].as_str().unwrap();
        assert_eq!(Path::new(path), d.path().join("exp/../data/log.csv"));
        assert!(Path::new(path).exists());

        let blocks = write(
            d.path(),
            "exp/blocks.toml",
            "include = [\"../data/shared.toml\"]\n[experiments.a.model]\nname = \"din\"\n",
        );
        let doc = read_config(&blocks).unwrap();
        assert!(doc.table.get("data").is_none());
        assert_eq!(doc.table["base"]["train"]["epochs"].as_integer(), Some(3));
        assert!(doc.table["experiments"]["a"].is_table());
    }

    #[test]
    fn cycles_missing_files_and_bad_values_are_errors_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        let a = write(d.path(), "a.toml", "include = \"b.toml\"\n");
        write(d.path(), "b.toml", "include = [\"a.toml\"]\n");
        let e = read_config(&a).unwrap_err().to_string();
        assert!(e.contains("includes itself") && e.contains("a.toml"), "{e}");
        let m = write(d.path(), "m.toml", "include = \"nope.toml\"\n");
        let e = read_config(&m).unwrap_err().to_string();
        assert!(
            e.contains("m.toml: include") && e.contains("nope.toml"),
            "{e}"
        );
        let n = write(d.path(), "n.toml", "include = 3\n");
        let e = read_config(&n).unwrap_err().to_string();
        assert!(
            e.contains("n.toml: include") && e.contains("integer"),
            "{e}"
        );
        let bad = write(d.path(), "bad.toml", "x = \n");
        let e = read_config(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.toml, line 1"), "{e}");
    }

    #[test]
    fn paths_that_do_not_exist_beside_the_config_stay_as_written() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "here.parquet", "");
        let c = write(
            d.path(),
            "c.toml",
            "[base.data]\nkind = \"parquet\"\npath = \"ml-1m/ratings.parquet\"\n\
             [experiments.a.data]\nkind = \"parquet\"\npath = \"here.parquet\"\nitems = \"here.parquet\"\n",
        );
        let doc = read_config(&c).unwrap();
        // `here.parquet` was rewritten to the config's folder: the table, not the raw text, is
        // the document (the text would lose the anchoring).
        assert_eq!(doc.text, None);
        assert_eq!(
            doc.table["base"]["data"]["path"].as_str(),
            Some("ml-1m/ratings.parquet")
        );
        let a = &doc.table["experiments"]["a"]["data"];
        assert_eq!(
            Path::new(a["path"].as_str().unwrap()),
            d.path().join("here.parquet")
        );
        assert_eq!(
            Path::new(a["items"].as_str().unwrap()),
            d.path().join("here.parquet")
        );
    }

    #[test]
    fn set_parses_toml_values_else_strings_and_creates_tables() {
        let mut doc: toml::Table = toml::from_str("[train]\nlr = 0.1\nname = 3\n").unwrap();
        for s in [
            "train.lr=0.01",
            "model.params.hidden=[64, 32]",
            "model.name=din",
            "train.shuffle = true",
        ] {
            s.parse::<Assignment>().unwrap().apply(&mut doc).unwrap();
        }
        assert_eq!(doc["train"]["lr"].as_float(), Some(0.01));
        assert_eq!(doc["train"]["shuffle"].as_bool(), Some(true));
        assert_eq!(doc["model"]["name"].as_str(), Some("din"));
        let h = doc["model"]["params"]["hidden"].as_array().unwrap();
        assert_eq!(h.len(), 2);
        let e = "train.name.x=1"
            .parse::<Assignment>()
            .unwrap()
            .apply(&mut doc)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--set train.name.x") && e.contains("integer"),
            "{e}"
        );
        for bad in ["lr", "=1", "a..b=1", "a b=1"] {
            let e = bad.parse::<Assignment>().unwrap_err().to_string();
            assert!(e.contains("--set"), "{bad}: {e}");
        }
    }
}
