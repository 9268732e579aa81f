//! The file sets that `longtail import` and `longtail synth` write, checked and written together
//! through [`crate::atomic`]: no output may be an input of the command or a file that is not an
//! earlier output of the same kind, every file is written to a temporary name first, and they are
//! renamed into place only once all of them were written.

use std::path::{Path, PathBuf};

use crate::atomic::{commit_all, guard_output, Replaceable, Staged};
use crate::error::Result;
use crate::import::{read_vocab, Imported};
use crate::items::{items_path, ItemFeatures};
use crate::synth::SynthData;
use crate::table::{parquet_has_marker, MARKER_KEY};

/// `x.parquet` -> `x.<suffix>` (any other name gets `.<suffix>` appended).
pub fn beside(table: &Path, suffix: &str) -> PathBuf {
    let name = table
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".parquet").unwrap_or(&name);
    table.with_file_name(format!("{stem}.{suffix}"))
}

/// What `import --output OUT` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportPaths {
    /// The canonical table, `OUT` itself.
    pub table: PathBuf,
    /// `OUT.user_vocab.json` (`.parquet` dropped from OUT): raw user id per dense id.
    pub user_vocab: PathBuf,
    /// `OUT.item_vocab.json`: raw item id per dense id.
    pub item_vocab: PathBuf,
    /// `OUT.items.parquet`: item side features, when imported.
    pub items: PathBuf,
}

impl ImportPaths {
    /// The paths for `--output out`. They are always siblings of `out`: never inside a folder
    /// that happens to share the output's stem.
    pub fn new(out: &Path) -> ImportPaths {
        ImportPaths {
            table: out.to_path_buf(),
            user_vocab: beside(out, "user_vocab.json"),
            item_vocab: beside(out, "item_vocab.json"),
            items: items_path(out),
        }
    }
}

fn is_table(p: &Path) -> bool {
    parquet_has_marker(p, MARKER_KEY)
}

fn is_vocab(p: &Path) -> bool {
    read_vocab(p).is_ok()
}

fn is_items(p: &Path) -> bool {
    parquet_has_marker(p, crate::items::MARKER_KEY)
}

/// Checks every output of an import before anything is read or written: none may be one of
/// `inputs`, and an existing one must be an earlier longtail output of the same kind.
pub fn check_import_outputs(out: &Path, inputs: &[&Path], with_items: bool) -> Result<ImportPaths> {
    let p = ImportPaths::new(out);
    guard_output(
        &p.table,
        inputs,
        false,
        Replaceable::If(&is_table),
        "interaction table",
    )?;
    for v in [&p.user_vocab, &p.item_vocab] {
        guard_output(
            v,
            inputs,
            false,
            Replaceable::If(&is_vocab),
            "vocabulary file",
        )?;
    }
    if with_items {
        guard_output(
            &p.items,
            inputs,
            false,
            Replaceable::If(&is_items),
            "item-feature table",
        )?;
    }
    Ok(p)
}

/// Writes an import's table, vocabularies and (optional) item features to the paths of
/// [`check_import_outputs`], all or none.
pub fn write_import(
    imported: &Imported,
    features: Option<&ItemFeatures>,
    out: &Path,
    inputs: &[&Path],
) -> Result<ImportPaths> {
    let p = check_import_outputs(out, inputs, features.is_some())?;
    let table = Staged::file(&p.table)?;
    imported.interactions.write_parquet(table.path())?;
    let users = Staged::file(&p.user_vocab)?;
    crate::atomic::write_json(users.path(), &imported.user_vocab, false)?;
    let items_vocab = Staged::file(&p.item_vocab)?;
    crate::atomic::write_json(items_vocab.path(), &imported.item_vocab, false)?;
    let mut staged = vec![table, users, items_vocab];
    if let Some(f) = features {
        let s = Staged::file(&p.items)?;
        f.write_parquet(s.path())?;
        staged.push(s);
    }
    commit_all(staged)?;
    Ok(p)
}

/// Whether `p` is a PNG file (the plots longtail writes): what a later plot may replace.
pub fn is_png(p: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 8];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == *b"\x89PNG\r\n\x1a\n"
}

/// `synth --out OUT` writes `OUT` and `OUT.item_clusters.json` (`.parquet` dropped from OUT).
pub fn clusters_path(out: &Path) -> PathBuf {
    beside(out, "item_clusters.json")
}

fn is_clusters(p: &Path) -> bool {
    std::fs::read(p)
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<u32>>(&b).ok())
        .is_some()
}

/// Checks both outputs of `synth` (an existing one must be an earlier longtail output of its
/// kind); returns the clusters path.
pub fn check_synth_outputs(out: &Path, inputs: &[&Path]) -> Result<PathBuf> {
    let c = clusters_path(out);
    guard_output(
        out,
        inputs,
        false,
        Replaceable::If(&is_table),
        "interaction table",
    )?;
    guard_output(
        &c,
        inputs,
        false,
        Replaceable::If(&is_clusters),
        "item-clusters file",
    )?;
    Ok(c)
}

/// Writes a synthetic table and its ground-truth clusters, both or neither.
pub fn write_synth(data: &SynthData, out: &Path, inputs: &[&Path]) -> Result<PathBuf> {
    let c = check_synth_outputs(out, inputs)?;
    let table = Staged::file(out)?;
    data.interactions.write_parquet(table.path())?;
    let clusters = Staged::file(&c)?;
    crate::atomic::write_json(clusters.path(), &data.item_cluster, false)?;
    commit_all(vec![table, clusters])?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Interactions;

    fn imported() -> Imported {
        Imported {
            interactions: Interactions {
                user: vec![1, 2],
                item: vec![1, 1],
                ts: vec![5, 6],
                rating: None,
                label: None,
            },
            user_vocab: vec!["".into(), "a".into(), "b".into()],
            item_vocab: vec!["".into(), "x".into()],
        }
    }

    #[test]
    fn paths_are_siblings_even_beside_a_folder_of_the_same_stem() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("prep")).unwrap();
        std::fs::write(d.path().join("prep/user_vocab.json"), "[\"\",\"keep\"]").unwrap();
        let p = write_import(&imported(), None, &d.path().join("prep.parquet"), &[]).unwrap();
        assert_eq!(p.user_vocab, d.path().join("prep.user_vocab.json"));
        assert_eq!(
            std::fs::read_to_string(d.path().join("prep/user_vocab.json")).unwrap(),
            "[\"\",\"keep\"]"
        );
        // A second import over the first one's outputs is fine.
        write_import(&imported(), None, &d.path().join("prep.parquet"), &[]).unwrap();
    }

    #[test]
    fn an_input_or_a_foreign_file_is_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let raw = d.path().join("log.csv");
        std::fs::write(&raw, "u,i,t\n").unwrap();
        let e = write_import(&imported(), None, &raw, &[&raw])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is the input"), "{e}");
        assert_eq!(std::fs::read_to_string(&raw).unwrap(), "u,i,t\n");
        // A foreign file where a vocabulary would go: nothing at all is written.
        std::fs::write(d.path().join("t.user_vocab.json"), "notes").unwrap();
        let e = write_import(&imported(), None, &d.path().join("t.parquet"), &[&raw])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.user_vocab.json") && e.contains("not a vocabulary file"),
            "{e}"
        );
        assert!(!d.path().join("t.parquet").exists());
        let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(left.len(), 2);
        // A foreign Parquet file is not replaced either.
        let foreign = d.path().join("f.parquet");
        std::fs::write(&foreign, "PAR1").unwrap();
        assert!(write_import(&imported(), None, &foreign, &[]).is_err());
    }
}
