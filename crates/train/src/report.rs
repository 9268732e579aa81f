//! `longtail report`: mean ± std over seeds of every metric, grouped by model, variant and
//! dataset, as `report.json` (one row per group and metric) and `report.md` (a table per dataset
//! with the per-group metrics as columns).

use crate::error::{io, Result, TrainError};
use crate::manifest::RunManifest;
use longtail_data::atomic::{guard_output, write_bytes, Replaceable};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One row of `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    pub model: String,
    pub variant: String,
    pub dataset: String,
    pub metric: String,
    pub mean: f64,
    /// Sample standard deviation over seeds (n - 1 in the denominator); 0 for a single run.
    pub std: f64,
    pub n: usize,
}

/// Reads `run.json` from each folder. A folder given that holds no run.json but has run folders
/// inside (e.g. `runs/`) is expanded one level.
pub fn load_runs(dirs: &[PathBuf]) -> Result<Vec<(PathBuf, RunManifest)>> {
    let mut out = Vec::new();
    let mut seen: Vec<(PathBuf, PathBuf)> = Vec::new();
    for d in dirs {
        let direct = d.join("run.json");
        let candidates: Vec<PathBuf> = if direct.is_file() {
            vec![direct]
        } else {
            let mut v: Vec<PathBuf> = std::fs::read_dir(d)
                .map_err(|e| io(d, e))?
                .filter_map(|e| e.ok().map(|e| e.path().join("run.json")))
                .filter(|p| p.is_file())
                .collect();
            v.sort();
            if v.is_empty() {
                return Err(TrainError::Config {
                    key: "runs".into(),
                    message: format!(
                        "{} holds no run.json (nor run folders that do)",
                        d.display()
                    ),
                });
            }
            v
        };
        for path in candidates {
            // The same run given twice (`R`, `./R`, a link, a folder and a run inside it) would
            // count as two seeds.
            let real = std::fs::canonicalize(&path).map_err(|e| io(&path, e))?;
            if let Some((first, _)) = seen.iter().find(|(_, r)| *r == real) {
                return Err(TrainError::Config {
                    key: "runs".into(),
                    message: format!(
                        "{} is given twice (also as {}): each run counts once",
                        path.display(),
                        first.display()
                    ),
                });
            }
            seen.push((path.clone(), real));
            let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
            let m: RunManifest = serde_json::from_str(&text).map_err(|e| TrainError::Config {
                key: path.display().to_string(),
                message: format!("not a longtail run manifest: {e}"),
            })?;
            out.push((path, m));
        }
    }
    Ok(out)
}

/// Aggregates the test metrics of `runs` over seeds. Non-finite values (undefined metrics) are
/// left out of a group's mean, and `n` counts the values used.
pub fn aggregate(runs: &[(PathBuf, RunManifest)]) -> Vec<ReportRow> {
    let mut groups: BTreeMap<(String, String, String, String), Vec<f64>> = BTreeMap::new();
    for (_, m) in runs {
        for (metric, v) in &m.metrics {
            if v.is_finite() {
                groups
                    .entry((
                        m.dataset.name.clone(),
                        m.model.clone(),
                        m.variant.clone(),
                        metric.clone(),
                    ))
                    .or_default()
                    .push(*v);
            }
        }
    }
    groups
        .into_iter()
        .map(|((dataset, model, variant, metric), vals)| {
            let n = vals.len();
            let mean = vals.iter().sum::<f64>() / n as f64;
            let std = if n > 1 {
                (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
            } else {
                0.0
            };
            ReportRow {
                model,
                variant,
                dataset,
                metric,
                mean,
                std,
                n,
            }
        })
        .collect()
}

/// Adds `relaimpr/<metric>` rows (MFN eq. 13, from the means) for every AUC-type metric of every
/// model, against `base` (a model name, optionally `model:variant`) on the same dataset. Datasets
/// without the base, and base AUCs at or under 0.5, get no such rows.
pub fn add_rela_impr(rows: &mut Vec<ReportRow>, base: &str) -> Result<()> {
    let (bm, bv) = base.split_once(':').unwrap_or((base, "default"));
    if !rows.iter().any(|r| r.model == bm && r.variant == bv) {
        return Err(TrainError::Config {
            key: "base".into(),
            message: format!("no runs of base '{bm}' (variant '{bv}') among the reported runs"),
        });
    }
    let mut extra = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r.metric.starts_with("auc") || r.metric.starts_with("gauc"))
    {
        if r.metric == "gauc_users_skipped" {
            continue;
        }
        let base_row = rows.iter().find(|b| {
            b.model == bm && b.variant == bv && b.dataset == r.dataset && b.metric == r.metric
        });
        if let Some(b) = base_row {
            if let Ok(v) = longtail_eval::rela_impr(r.mean, b.mean) {
                extra.push(ReportRow {
                    metric: format!("relaimpr/{}", r.metric),
                    mean: v,
                    std: 0.0,
                    ..r.clone()
                });
            }
        }
    }
    rows.extend(extra);
    Ok(())
}

/// The CTR metrics every summary shows first, in this order (the demo's table, report columns).
pub const CTR_SUMMARY: [&str; 8] = [
    "auc",
    "auc/user=tail",
    "auc/user=body",
    "auc/user=head",
    "auc/item=tail",
    "auc/item=head",
    "gauc",
    "logloss",
];

/// Report columns of datasets whose runs are ranked (retrieval), when present.
const RANKING_COLUMNS: [&str; 11] = [
    "hr@20",
    "ndcg@20",
    "hr@5",
    "ndcg@5",
    "ndcg@20/item=tail",
    "ndcg@20/item=head",
    "full_hr@20",
    "full_ndcg@20",
    "full_hr@5/cluster=tail",
    "full_hr@5/cluster=head",
    "silhouette",
];

/// Report columns after the CTR summary, when present.
const MORE_COLUMNS: [&str; 4] = ["hr@20", "ndcg@20", "relaimpr/auc", "relaimpr/auc/user=tail"];

/// (model, variant) -> metric -> row, for one dataset.
type ModelsOf<'a> = BTreeMap<(&'a str, &'a str), BTreeMap<&'a str, &'a ReportRow>>;

/// Markdown: one table per dataset, one row per (model, variant), mean ± std (n) per column.
pub fn markdown(rows: &[ReportRow]) -> String {
    let mut by_dataset: BTreeMap<&str, ModelsOf> = BTreeMap::new();
    for r in rows {
        by_dataset
            .entry(&r.dataset)
            .or_default()
            .entry((&r.model, &r.variant))
            .or_default()
            .insert(&r.metric, r);
    }
    let mut md = String::from(
        "# longtail report\n\nMean ± standard deviation over seeds (n = runs; one run shows its \
             value alone); `relaimpr/*` columns are RelaImpr (MFN eq. 13) in percent against the base, from the means.\n",
    );
    for (dataset, models) in by_dataset {
        // Ranking runs (retrieval) get ranking columns; CTR runs the CTR summary.
        let ranking = models.values().any(|m| m.contains_key("hr@20"));
        let wanted: Vec<&str> = if ranking {
            RANKING_COLUMNS.to_vec()
        } else {
            CTR_SUMMARY.iter().chain(&MORE_COLUMNS).copied().collect()
        };
        let cols: Vec<&str> = wanted
            .into_iter()
            .filter(|c| models.values().any(|m| m.contains_key(c)))
            .collect();
        md.push_str(&format!("\n## {dataset}\n\n| model | variant | n |"));
        for c in &cols {
            md.push_str(&format!(" {c} |"));
        }
        md.push_str("\n| --- | --- | --- |");
        md.push_str(&" ---: |".repeat(cols.len()));
        md.push('\n');
        for ((model, variant), metrics) in models {
            let n = metrics.values().map(|r| r.n).max().unwrap_or(0);
            md.push_str(&format!("| {model} | {variant} | {n} |"));
            for c in &cols {
                match metrics.get(c) {
                    // RelaImpr is computed from the means: a percentage with no spread.
                    Some(r) if r.metric.starts_with("relaimpr/") => {
                        md.push_str(&format!(" {:+.2}% |", r.mean))
                    }
                    // One run has no spread to show.
                    Some(r) if r.n < 2 => md.push_str(&format!(" {:.4} |", r.mean)),
                    Some(r) => md.push_str(&format!(" {:.4} ± {:.4} |", r.mean, r.std)),
                    None => md.push_str(" – |"),
                }
            }
            md.push('\n');
        }
    }
    md
}

/// A plot title that fits the picture: the dataset is named when short (it is in the file name).
fn title(what: &str, dataset: &str) -> String {
    if what.len() + dataset.len() <= 60 {
        format!("{what}: {dataset}")
    } else {
        what.to_string()
    }
}

/// A dataset name made safe for a file name.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Per dataset: `<prefix>auc_by_user_group_<dataset>.png` (bars: all / tail / body / head, one
/// colour per model and variant, ± std) and `<prefix>loss_<dataset>.png` (training loss per
/// epoch, one line per run). Returns each file's path and PNG bytes (nothing is written here).
pub fn render_plots(
    runs: &[(PathBuf, RunManifest)],
    rows: &[ReportRow],
    out: &Path,
    prefix: &str,
) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut written = Vec::new();
    let datasets: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.dataset.as_str()).collect();
    for dataset in datasets {
        let mut bars: BTreeMap<String, Vec<(String, f64, f64)>> = BTreeMap::new();
        for (key, group) in [
            ("auc", "all"),
            ("auc/user=tail", "tail"),
            ("auc/user=body", "body"),
            ("auc/user=head", "head"),
        ] {
            for r in rows
                .iter()
                .filter(|r| r.dataset == dataset && r.metric == key)
            {
                let name = if r.variant == "default" {
                    r.model.clone()
                } else {
                    format!("{} ({})", r.model, r.variant)
                };
                bars.entry(name)
                    .or_default()
                    .push((group.to_string(), r.mean, r.std));
            }
        }
        // Ranking runs have no per-user-group AUC: a chart of "all" alone says nothing.
        if bars.values().flatten().any(|(g, _, _)| g != "all") {
            let path = out.join(format!(
                "{prefix}auc_by_user_group_{}.png",
                file_stem(dataset)
            ));
            let series: Vec<_> = bars.into_iter().collect();
            let png = longtail_eval::plot_group_bars(
                &series,
                &title("Test AUC by user group (± std)", dataset),
                "AUC",
            )?;
            written.push((path, png));
        }
        let curves: Vec<(String, Vec<(f64, f64)>)> = runs
            .iter()
            .filter(|(_, m)| m.dataset.name == dataset)
            .map(|(p, m)| {
                let label = p
                    .parent()
                    .and_then(|d| d.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| m.model.clone());
                let pts = m
                    .epochs
                    .iter()
                    .filter_map(|e| e.losses.get("total").map(|l| (e.epoch as f64, *l)))
                    .collect();
                (label, pts)
            })
            .filter(|(_, pts): &(String, Vec<(f64, f64)>)| !pts.is_empty())
            .collect();
        if !curves.is_empty() {
            let path = out.join(format!("{prefix}loss_{}.png", file_stem(dataset)));
            let png = longtail_eval::plot_curves(
                &curves,
                &title("Training loss", dataset),
                "epoch",
                "weighted total loss",
            )?;
            written.push((path, png));
        }
    }
    Ok(written)
}

/// The synthetic interest skew of a run's config (`data.synth.interest_skew`), if any.
fn run_skew(m: &RunManifest) -> Option<f64> {
    m.config["data"]["synth"]["interest_skew"].as_f64()
}

/// Mean over runs of `f(run)` per (variant label, x), as curves sorted by x.
fn mean_curves(points: impl Iterator<Item = (String, f64, f64)>) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut acc: BTreeMap<String, BTreeMap<i64, (f64, f64, usize)>> = BTreeMap::new();
    for (label, x, y) in points {
        // x keyed at 1e-6 resolution so equal skews from different configs meet.
        let e = acc
            .entry(label)
            .or_default()
            .entry((x * 1e6).round() as i64)
            .or_insert((x, 0.0, 0));
        e.1 += y;
        e.2 += 1;
    }
    acc.into_iter()
        .map(|(label, pts)| {
            let pts = pts
                .into_values()
                .map(|(x, s, n)| (x, s / n as f64))
                .collect();
            (label, pts)
        })
        .collect()
}

/// Synthetic sweeps (IDW §3.2): when the runs cover at least two interest skews, plots of the
/// test metrics against the skew, one line per model variant (mean over seeds):
/// `<prefix>skew_<metric>.png` for full-catalogue HR@5 on tail, head and all clusters and for the
/// mean silhouette; and, for IDW runs, `<prefix>silhouette_over_idw_iterations.png` (one line per
/// skew and variant). Returns each file's path and PNG bytes (nothing is written here).
pub fn render_sweep_plots(
    runs: &[(PathBuf, RunManifest)],
    out: &Path,
    prefix: &str,
) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut written = Vec::new();
    let skews: std::collections::BTreeSet<i64> = runs
        .iter()
        .filter_map(|(_, m)| run_skew(m))
        .map(|x| (x * 1e6).round() as i64)
        .collect();
    if skews.len() < 2 {
        return Ok(written);
    }
    for (metric, what) in [
        ("full_hr@5/cluster=tail", "HR@5, tail clusters"),
        ("full_hr@5/cluster=head", "HR@5, head clusters"),
        ("full_hr@5", "HR@5, all clusters"),
        ("silhouette", "mean silhouette of item representations"),
    ] {
        let curves =
            mean_curves(runs.iter().filter_map(|(_, m)| {
                Some((m.variant.clone(), run_skew(m)?, *m.metrics.get(metric)?))
            }));
        if curves.is_empty() {
            continue;
        }
        let path = out.join(format!("{prefix}skew_{}.png", file_stem(metric)));
        let png = longtail_eval::plot_curves(
            &curves,
            &format!("{what} vs interest skew"),
            "interest skew (power-law exponent)",
            what,
        )?;
        written.push((path, png));
    }
    // Silhouette over IDW iterations (Figure 4): iteration t's value is measured before its
    // wake phase, so iteration 1 is the unweighted model.
    let curves = mean_curves(runs.iter().flat_map(|(_, m)| {
        let label = match run_skew(m) {
            Some(x) => format!("{} skew {x}", m.variant),
            None => m.variant.clone(),
        };
        m.retrieval
            .iter()
            .flat_map(|r| r.idw.iter())
            .filter_map(move |i| Some((label.clone(), i.iteration as f64, i.silhouette?)))
            .collect::<Vec<_>>()
    }));
    if !curves.is_empty() {
        let path = out.join(format!("{prefix}silhouette_over_idw_iterations.png"));
        let png = longtail_eval::plot_curves(
            &curves,
            "Mean silhouette over IDW iterations",
            "IDW iteration",
            "mean silhouette",
        )?;
        written.push((path, png));
    }
    Ok(written)
}

/// Loads runs, aggregates (with RelaImpr against `base` when given), and writes
/// `out/report.json`, `out/report.md` and the plots.
/// How [`write_report`] names and fills its output.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Base model for RelaImpr (`MODEL` or `MODEL:VARIANT`).
    pub base: Option<String>,
    /// File stem: `OUT/NAME.md`, `OUT/NAME.json` ["report"].
    pub name: Option<String>,
    /// Markdown put before the tables (the discussion of a results page).
    pub preamble: Option<String>,
    /// The file `preamble` was read from: an input, so no output may replace it.
    pub preamble_from: Option<PathBuf>,
    /// Copy each run's `run.json` and `metrics.json` to `OUT/NAME-runs/RUN/` and list them with
    /// links, so a results page carries its manifests.
    pub copy_manifests: bool,
}

/// `--name` is a file stem in `OUT`: not empty, not hidden, no path separators.
fn check_report_name(name: &str) -> Result<()> {
    let bad = |message: &str| {
        Err(TrainError::Config {
            key: "--name".into(),
            message: format!("'{name}' {message}"),
        })
    };
    if name.is_empty() {
        return bad("is empty: the report would be OUT/.md");
    }
    if name.starts_with('.') {
        return bad("starts with '.': the report would be hidden");
    }
    if name.contains(['/', '\\']) || name.chars().any(char::is_control) {
        return bad("is not a file name (no path separators or control characters)");
    }
    Ok(())
}

/// Aggregates the runs under `dirs` and writes `OUT/NAME.md`, `OUT/NAME.json` and the plots.
pub fn write_report(dirs: &[PathBuf], out: &Path, opts: &ReportOptions) -> Result<Vec<ReportRow>> {
    if let Some(n) = &opts.name {
        check_report_name(n)?;
    }
    let runs = load_runs(dirs)?;
    let mut rows = aggregate(&runs);
    if let Some(b) = &opts.base {
        add_rela_impr(&mut rows, b)?;
    }
    let name = opts.name.as_deref().unwrap_or("report");
    // Every output is made first, then checked (none may be an input or something longtail did
    // not write), then written: a refused report writes nothing.
    let mut files: Vec<(PathBuf, Vec<u8>, Kind)> = Vec::new();
    let json = serde_json::to_vec_pretty(&rows).map_err(|e| io(out, std::io::Error::other(e)))?;
    files.push((out.join(format!("{name}.json")), json, Kind::Rows));
    let mut md = String::new();
    if let Some(p) = &opts.preamble {
        md.push_str(p.trim_end());
        md.push_str("\n\n");
    }
    md.push_str(&markdown(&rows));
    if opts.copy_manifests {
        let runs_dir = out.join(format!("{name}-runs"));
        md.push_str(
            "\n## Runs\n\nEvery run's manifest (config, data hash, versions, device, per-epoch \
             losses and validation metrics) and test metrics, copied from its run folder.\n\n\
             | dataset | model | variant | seed | manifest | metrics |\n| --- | --- | --- | ---: | --- | --- |\n",
        );
        let mut listed: Vec<(String, String, String, u64, String)> = Vec::new();
        for (path, m) in &runs {
            let run = path
                .parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "run".into());
            // Per dataset: the same block name on two datasets gives the same run folder name.
            let run = format!("{}/{run}", m.dataset.name);
            let dest = runs_dir.join(&run);
            for (f, kind) in [
                ("run.json", Kind::Manifest),
                ("metrics.json", Kind::Metrics),
            ] {
                let src = path.with_file_name(f);
                let bytes = std::fs::read(&src).map_err(|e| io(&src, e))?;
                files.push((dest.join(f), bytes, kind));
            }
            listed.push((
                m.dataset.name.clone(),
                m.model.clone(),
                m.variant.clone(),
                m.seed,
                run,
            ));
        }
        listed.sort();
        for (dataset, model, variant, seed, run) in listed {
            md.push_str(&format!(
                "| {dataset} | {model} | {variant} | {seed} | [run.json]({name}-runs/{run}/run.json) | [metrics.json]({name}-runs/{run}/metrics.json) |\n"
            ));
        }
    }
    // Several reports can share a folder: named reports prefix their plots with the name.
    let prefix = match &opts.name {
        Some(n) => format!("{n}_"),
        None => String::new(),
    };
    let mut plots = render_plots(&runs, &rows, out, &prefix)?;
    plots.extend(render_sweep_plots(&runs, out, &prefix)?);
    if !plots.is_empty() {
        md.push_str("\n## Plots\n\n");
        for (p, _) in &plots {
            if let Some(f) = p.file_name().map(|f| f.to_string_lossy()) {
                md.push_str(&format!("![{f}]({f})\n"));
            }
        }
    }
    files.extend(plots.into_iter().map(|(p, b)| (p, b, Kind::Png)));
    md.push_str(&format!("\n{REPORT_MARK}\n"));
    files.push((
        out.join(format!("{name}.md")),
        md.into_bytes(),
        Kind::Markdown,
    ));

    let mut inputs: Vec<PathBuf> = runs
        .iter()
        .flat_map(|(p, _)| [p.clone(), p.with_file_name("metrics.json")])
        .collect();
    inputs.extend(opts.preamble_from.iter().cloned());
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let rows_beside = out.join(format!("{name}.json"));
    for (path, _, kind) in &files {
        let ours = |p: &Path| kind.is_ours(p, &rows_beside);
        guard_output(path, &inputs, false, Replaceable::If(&ours), kind.what())?;
    }
    for (path, bytes, _) in &files {
        write_bytes(path, bytes)?;
    }
    Ok(rows)
}

/// The last line of every report's Markdown: how a later report knows the file is its own.
pub const REPORT_MARK: &str = "<!-- written by longtail report -->";

/// The kinds of file a report writes, and how each recognises an earlier one of its kind.
#[derive(Clone, Copy)]
enum Kind {
    Rows,
    Markdown,
    Png,
    Manifest,
    Metrics,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::Rows => "report table (JSON)",
            Kind::Markdown => "report page",
            Kind::Png => "plot",
            Kind::Manifest => "copied run manifest",
            Kind::Metrics => "copied metrics file",
        }
    }

    fn is_ours(self, p: &Path, rows_beside: &Path) -> bool {
        let rows = |p: &Path| {
            std::fs::read(p)
                .ok()
                .and_then(|b| serde_json::from_slice::<Vec<ReportRow>>(&b).ok())
                .is_some()
        };
        match self {
            Kind::Rows => rows(p),
            // Pages written before the mark existed are known by their JSON twin.
            Kind::Markdown => {
                std::fs::read_to_string(p).is_ok_and(|t| t.contains(REPORT_MARK))
                    || rows(rows_beside)
            }
            Kind::Png => longtail_data::outputs::is_png(p),
            Kind::Manifest => std::fs::read(p)
                .ok()
                .and_then(|b| serde_json::from_slice::<RunManifest>(&b).ok())
                .is_some(),
            Kind::Metrics => longtail_eval::read_metrics_json(p).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: &str, metric: &str, mean: f64) -> ReportRow {
        ReportRow {
            model: model.into(),
            variant: "default".into(),
            dataset: "d".into(),
            metric: metric.into(),
            mean,
            std: 0.0,
            n: 1,
        }
    }

    #[test]
    fn markdown_has_one_row_per_model_and_known_columns() {
        let md = markdown(&[
            row("a", "auc", 0.7),
            row("a", "auc/user=tail", 0.6),
            row("b", "auc", 0.8),
        ]);
        assert!(md.contains("## d"));
        assert!(md.contains("| a | default | 1 | 0.7000 | 0.6000 |"), "{md}");
        assert!(md.contains("| b | default | 1 | 0.8000 | – |"), "{md}");
        // Several runs show their spread.
        let mut c = row("c", "auc", 0.75);
        (c.std, c.n) = (0.01, 3);
        let md = markdown(&[c]);
        assert!(md.contains("| c | default | 3 | 0.7500 ± 0.0100 |"), "{md}");
    }

    #[test]
    fn relaimpr_rows_are_percent_from_the_means() {
        // MFN eq. 13: (0.8 - 0.5) / (0.7 - 0.5) - 1 = +50%; the base itself gets +0%.
        let mut rows = vec![row("a", "auc", 0.7), row("b", "auc", 0.8)];
        add_rela_impr(&mut rows, "a").unwrap();
        let md = markdown(&rows);
        assert!(
            md.contains("| b | default | 1 | 0.8000 | +50.00% |"),
            "{md}"
        );
        assert!(md.contains("| a | default | 1 | 0.7000 | +0.00% |"), "{md}");
        assert!(add_rela_impr(&mut rows, "c").is_err());
    }
}
