//! `bench.json`: every figure of a suite run beside its peer, the quality gate's metrics, and
//! the machine; the Markdown table; and the comparison of two reports that CI fails on.
//!
//! Speed is a ratio, `peer / ours` (above 1: longtail is faster): the median over interleaved
//! rounds of each round's ratio, measured in one run, because an absolute time on a shared
//! machine means little. A figure without a peer is recorded for reading, never gated.

use crate::error::{Result, TrainError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One measured quantity (lower is better, milliseconds) and its peer's, per round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// `step/basemodel`, `data/ml-1m/prepare`, `metrics/auc_10m`, `density/sleep_phase`...
    pub id: String,
    /// What the peer is (`pytorch-eager`, `scikit-learn`, `pandas`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// longtail's milliseconds per round.
    pub ours_ms: Vec<f64>,
    /// The peer's milliseconds per round (same rounds, interleaved).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer_ms: Vec<f64>,
    /// Medians of each side's extra figures (`rows_per_s`, `peak_rss_mb`, `value`...); the
    /// peer's carry a `peer_` prefix.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, f64>,
    /// Derived: median of `ours_ms`.
    pub ours_median_ms: f64,
    /// Derived: median of `peer_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_median_ms: Option<f64>,
    /// Derived: the median over rounds of `peer / ours` (above 1: longtail is faster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// Derived: how much the per-round ratios scatter, `2 * MAD / median` (a relative spread);
    /// `bench compare` widens a figure's allowed drop to the sum of the two reports' spreads when
    /// that exceeds `--max-drop`, so a figure only gates as tightly as its measurements allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_noise: Option<f64>,
    /// Baselines blessed from several suite runs ([`merge_runs`]): how much the figure's ratio
    /// moved between those runs, `(max - min) / median`. A figure whose rounds agree within a run
    /// can still move between runs (a shared machine's memory bandwidth, other tenants);
    /// `bench compare` widens its limit to this spread too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_spread: Option<f64>,
}

impl Figure {
    /// A figure from per-round times; the medians and the ratio are derived here.
    pub fn new(
        id: &str,
        peer: Option<&str>,
        ours_ms: Vec<f64>,
        peer_ms: Vec<f64>,
        extra: BTreeMap<String, f64>,
    ) -> Figure {
        let ours_median_ms = median(&ours_ms);
        let peer_median_ms = (!peer_ms.is_empty()).then(|| median(&peer_ms));
        // Paired: each round's two sides ran back to back, so the median of the per-round
        // ratios cancels the machine's drift between rounds that a ratio of medians keeps.
        let per_round: Vec<f64> = if peer_ms.len() == ours_ms.len() {
            ours_ms
                .iter()
                .zip(&peer_ms)
                .filter(|(o, _)| **o > 0.0)
                .map(|(o, p)| p / o)
                .collect()
        } else {
            Vec::new()
        };
        let (ratio, ratio_noise) = if per_round.is_empty() {
            let r = peer_median_ms
                .filter(|_| ours_median_ms > 0.0)
                .map(|p| p / ours_median_ms);
            (r, None)
        } else {
            let m = median(&per_round);
            let dev: Vec<f64> = per_round.iter().map(|r| (r - m).abs()).collect();
            let noise = (per_round.len() > 1 && m > 0.0).then(|| 2.0 * median(&dev) / m);
            (Some(m), noise)
        };
        Figure {
            id: id.to_string(),
            peer: peer.map(str::to_string),
            ours_ms,
            peer_ms,
            extra,
            ours_median_ms,
            peer_median_ms,
            ratio,
            ratio_noise,
            run_spread: None,
        }
    }
}

/// The report CI gates when it measured the speed figures more than once: each figure is the
/// run with the highest ratio (so a slowdown fails only when every run shows it, while one noisy
/// run on a shared machine does not), the quality gate's metrics are the first run that has them
/// (they are deterministic; later runs may skip the gate), and the first report gives the rest.
pub fn best_of(reports: &[BenchReport]) -> Result<BenchReport> {
    let Some(first) = reports.first() else {
        return Err(TrainError::Config {
            key: "bench".into(),
            message: "no report to compare".into(),
        });
    };
    let mut out = first.clone();
    for r in &reports[1..] {
        for f in &r.figures {
            match out.figures.iter_mut().find(|x| x.id == f.id) {
                Some(x) if f.ratio.is_some() && x.ratio.is_none_or(|a| f.ratio > Some(a)) => {
                    *x = f.clone()
                }
                Some(_) => {}
                None => out.figures.push(f.clone()),
            }
        }
        for q in &r.quality {
            if !out.quality.iter().any(|x| x.id == q.id) {
                out.quality.push(q.clone());
            }
        }
    }
    Ok(out)
}

/// One baseline from several suite runs of the same tree: each figure is the run whose ratio is
/// the median of the runs' ratios, with the runs' spread as [`Figure::run_spread`]; the quality
/// gate's metrics must be equal in every run that has them (same-seed CPU runs repeat exactly),
/// else an error naming the first that differs; runs without them (`--no-gate`) add speed
/// measurements only. The first report gives everything else (versions, machine).
pub fn merge_runs(reports: &[BenchReport]) -> Result<BenchReport> {
    let Some(first) = reports.first() else {
        return Err(TrainError::Config {
            key: "bench".into(),
            message: "no report to bless".into(),
        });
    };
    // One tree, one machine: a baseline mixing builds or CPUs would gate against numbers that
    // no single run can repeat.
    for r in &reports[1..] {
        if let (Some(a), Some(b)) = (&first.git_revision, &r.git_revision) {
            if a != b {
                return Err(TrainError::Config {
                    key: "bench".into(),
                    message: format!(
                        "the reports blessed together come from different builds ({a} and {b}): \
                         bless runs of one tree"
                    ),
                });
            }
        }
        if r.machine.baseline_key() != first.machine.baseline_key() {
            return Err(TrainError::Config {
                key: "bench".into(),
                message: format!(
                    "the reports blessed together come from different machines ('{}' and \
                     '{}'): bless each machine's runs on their own",
                    first.machine.baseline_key(),
                    r.machine.baseline_key()
                ),
            });
        }
    }
    // Runs without the quality gate (`bench suite --no-gate`) add speed measurements only; the
    // first gated run gives the quality metrics and everything else.
    let first = reports
        .iter()
        .find(|r| !r.quality.is_empty())
        .unwrap_or(first);
    for r in reports.iter().filter(|r| !r.quality.is_empty()) {
        for q in &first.quality {
            let other = r.quality.iter().find(|x| x.id == q.id);
            // Equal up to the last bits of a float sum (far inside any quality tolerance).
            let same = other.is_some_and(|o| {
                o.metrics.len() == q.metrics.len()
                    && q.metrics.iter().all(|(k, v)| {
                        o.metrics
                            .get(k)
                            .is_some_and(|w| (v - w).abs() <= 1e-9 || (v.is_nan() && w.is_nan()))
                    })
            });
            if !same {
                return Err(TrainError::Config {
                    key: "bench".into(),
                    message: format!(
                        "quality run '{}' differs between the reports blessed together (they \
                         must be runs of the same tree at the same thread count)",
                        q.id
                    ),
                });
            }
        }
    }
    let mut out = first.clone();
    for f in out.figures.iter_mut() {
        let runs: Vec<&Figure> = reports
            .iter()
            .filter_map(|r| r.figures.iter().find(|x| x.id == f.id))
            .filter(|x| x.ratio.is_some())
            .collect();
        if runs.len() < 2 {
            continue;
        }
        let ratios: Vec<f64> = runs.iter().filter_map(|x| x.ratio).collect();
        let m = median(&ratios);
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mid = runs
            .iter()
            .min_by(|a, b| {
                let da = (a.ratio.unwrap_or(m) - m).abs();
                let db = (b.ratio.unwrap_or(m) - m).abs();
                da.total_cmp(&db)
            })
            .copied()
            .unwrap_or(f);
        *f = Figure {
            run_spread: (m > 0.0).then(|| (hi - lo) / m),
            ..mid.clone()
        };
    }
    let means: Vec<BTreeMap<String, f64>> = reports.iter().map(family_means).collect();
    out.family_spread = BTreeMap::new();
    for fam in means[0].keys() {
        let v: Vec<f64> = means.iter().filter_map(|m| m.get(fam).copied()).collect();
        if v.len() >= 2 {
            let m = median(&v);
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if m > 0.0 {
                out.family_spread.insert(fam.clone(), (hi - lo) / m);
            }
        }
    }
    Ok(out)
}

/// The metrics of one quality-gate run (test split, flat keys as in `metrics.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityRun {
    pub id: String,
    pub metrics: BTreeMap<String, f64>,
    pub wall_s: f64,
}

/// The machine a report was measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub os: String,
    /// libtorch's CPU threads during the run (pinned by the suite).
    pub threads: usize,
    /// The GPU, when the run had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
    /// The CPU kernels in force (`longtail_core::numerics::describe`); empty in reports older
    /// than the pin. Quality metrics are only comparable between runs with the same.
    #[serde(default)]
    pub cpu_kernels: String,
}

impl Machine {
    /// What decides whether two runs' quality metrics repeat exactly: the CPU model, the
    /// kernels in force and the thread count.
    pub fn baseline_key(&self) -> String {
        let kernels = if self.cpu_kernels.is_empty() {
            "unrecorded kernels"
        } else {
            &self.cpu_kernels
        };
        format!("{} | {kernels} | {} threads", self.cpu_model, self.threads)
    }

    /// Reads what `/proc` and `uname` say about this machine.
    pub fn this(threads: usize, gpu: Option<String>) -> Machine {
        let cpu_model = longtail_core::runtime::cpu_model();
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / (1024.0 * 1024.0));
        let os = std::process::Command::new("uname")
            .arg("-sr")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory_gib,
            os,
            threads,
            gpu,
            cpu_kernels: longtail_core::numerics::describe(),
        }
    }
}

/// A whole suite run: `bench.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub longtail_version: String,
    #[serde(default)]
    pub git_revision: Option<String>,
    /// `ci` or `full`.
    pub subset: String,
    pub rounds: usize,
    pub started_unix_s: u64,
    pub wall_s: f64,
    pub machine: Machine,
    pub tch: String,
    pub libtorch: Option<String>,
    /// Python and package versions of the peers (`torch`, `sklearn`, `pandas`...).
    #[serde(default)]
    pub peer_versions: BTreeMap<String, String>,
    pub figures: Vec<Figure>,
    pub quality: Vec<QualityRun>,
    /// Baselines blessed from several runs: how far each family's geometric mean of ratios
    /// moved between them, `(max - min) / median`; `bench compare` widens the family's limit to
    /// it (figures of one family move together when the machine's state changes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub family_spread: BTreeMap<String, f64>,
    /// What was blessed on other machines ([`Machine::baseline_key`]): same-seed runs repeat
    /// exactly on one CPU model, not across models (AMD EPYC and Intel Xeon differ by up to
    /// 1.3e-2 on the gate's small test sets, AVX2 kernels pinned on both), and some peer
    /// ratios differ by CPU too (GAUC vs pandas: 10.7x on the EPYC, 6.8-9.6x on the Xeon). So
    /// `compare` checks a run against its own machine's entry where the baseline has one, and
    /// otherwise its speed against [`BenchReport::figures`] and its quality at
    /// [`Thresholds::cross_machine_tol`] against [`BenchReport::quality`]. `bench bless`
    /// carries them over from the old baseline ([`BenchReport::carry_machines`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_machines: Vec<MachineBaseline>,
}

/// The figures and quality-gate metrics blessed on one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineBaseline {
    /// [`Machine::baseline_key`] of the machine they were measured on.
    pub machine: String,
    #[serde(default)]
    pub figures: Vec<Figure>,
    #[serde(default)]
    pub quality: Vec<QualityRun>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub family_spread: BTreeMap<String, f64>,
}

impl BenchReport {
    /// What was blessed on the machine `key` ([`Machine::baseline_key`]), if anything.
    pub fn blessed_on(&self, key: &str) -> Option<MachineBaseline> {
        if self.machine.baseline_key() == key {
            return Some(self.own_machine());
        }
        self.other_machines
            .iter()
            .find(|m| m.machine == key)
            .cloned()
    }

    fn own_machine(&self) -> MachineBaseline {
        MachineBaseline {
            machine: self.machine.baseline_key(),
            figures: self.figures.clone(),
            quality: self.quality.clone(),
            family_spread: self.family_spread.clone(),
        }
    }

    /// The baseline `bless` writes: `self` (the merged new runs) carrying what `old` holds for
    /// other machines, except the figures and quality runs named in `stale` (ids; every one
    /// with `all`), whose numbers an intended change moved and which cannot be re-measured
    /// here. Returns what was carried and what dropped, one line per machine.
    pub fn carry_machines(&mut self, old: &BenchReport, stale: &[String]) -> Vec<String> {
        let here = self.machine.baseline_key();
        let mut sets = vec![old.own_machine()];
        sets.extend(old.other_machines.iter().cloned());
        let is_stale = |id: &str| stale.iter().any(|s| s == "all" || s == id);
        let mut notes = Vec::new();
        self.other_machines.clear();
        for mut set in sets.into_iter().filter(|m| m.machine != here) {
            let before = set.figures.len() + set.quality.len();
            let mut dropped: Vec<String> = set
                .figures
                .iter()
                .map(|f| f.id.clone())
                .chain(set.quality.iter().map(|q| q.id.clone()))
                .filter(|id| is_stale(id))
                .collect();
            set.figures.retain(|f| !is_stale(&f.id));
            // A quality run the gate no longer has goes too (it would fail as missing).
            set.quality.retain(|q| {
                let keep = !is_stale(&q.id) && self.quality.iter().any(|n| n.id == q.id);
                if !keep && !is_stale(&q.id) {
                    dropped.push(q.id.clone());
                }
                keep
            });
            let kept = set.figures.len() + set.quality.len();
            notes.push(format!(
                "blessed on '{}': kept {kept} of {before} figures and quality runs; dropped: {}",
                set.machine,
                if dropped.is_empty() {
                    "none".to_string()
                } else {
                    dropped.join(", ")
                }
            ));
            if kept > 0 {
                self.other_machines.push(set);
            }
        }
        notes
    }
}

/// A figure's family: the first part of its id (`step`, `data`, `metrics`...).
fn family_of(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

fn geometric_mean(xs: &[f64]) -> f64 {
    (xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len() as f64).exp()
}

/// Each family's geometric mean of its figures' ratios (families with at least two).
fn family_means(r: &BenchReport) -> BTreeMap<String, f64> {
    let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for f in &r.figures {
        if let Some(x) = f.ratio.filter(|x| *x > 0.0) {
            by.entry(family_of(&f.id).to_string()).or_default().push(x);
        }
    }
    by.into_iter()
        .filter(|(_, v)| v.len() >= 2)
        .map(|(k, v)| (k, geometric_mean(&v)))
        .collect()
}

impl BenchReport {
    pub fn read(path: &Path) -> Result<BenchReport> {
        let text = std::fs::read_to_string(path).map_err(|e| crate::error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| TrainError::Input {
            path: path.to_path_buf(),
            message: format!("not a bench.json: {e}"),
        })
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| crate::error::io(path, std::io::Error::other(e)))?;
        bytes.push(b'\n');
        Ok(longtail_data::atomic::write_bytes(path, &bytes)?)
    }

    /// The Markdown table of every figure and the quality runs, with the machine.
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut s = format!(
            "Measured by `longtail bench suite --subset {}` ({} interleaved rounds; medians) on {} \
             ({} CPUs, {:.0} GiB, {}; libtorch {} with {} threads{}); longtail {}{}.\n\n",
            self.subset,
            self.rounds,
            m.cpu_model,
            m.cpus,
            m.memory_gib,
            m.os,
            self.libtorch.as_deref().unwrap_or("?"),
            m.threads,
            m.gpu
                .as_ref()
                .map(|g| format!("; GPU {g}"))
                .unwrap_or_else(|| "; no GPU".into()),
            self.longtail_version,
            self.git_revision
                .as_ref()
                .map(|r| format!(" at {r}"))
                .unwrap_or_default(),
        );
        if !self.peer_versions.is_empty() {
            let v: Vec<String> = self
                .peer_versions
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            s.push_str(&format!("Peers: {}.\n\n", v.join(", ")));
        }
        s.push_str("| figure | longtail (ms) | peer | peer (ms) | peer / longtail | notes |\n");
        s.push_str("| --- | ---: | --- | ---: | ---: | --- |\n");
        for f in &self.figures {
            let notes: Vec<String> = f
                .extra
                .iter()
                .filter(|(k, _)| NOTE_KEYS.contains(&k.as_str()))
                .map(|(k, v)| format!("{k} {}", short(*v)))
                .collect();
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                f.id,
                short(f.ours_median_ms),
                f.peer.as_deref().unwrap_or("-"),
                f.peer_median_ms.map(short).unwrap_or_else(|| "-".into()),
                f.ratio
                    .map(|r| format!("{r:.2}x"))
                    .unwrap_or_else(|| "-".into()),
                notes.join(", ")
            ));
        }
        if !self.quality.is_empty() {
            s.push_str("\nQuality gate (test metrics of fixed same-seed CPU runs):\n\n");
            s.push_str("| run | metric | value |\n| --- | --- | ---: |\n");
            for q in &self.quality {
                for (k, v) in &q.metrics {
                    s.push_str(&format!("| {} | {k} | {v:.6} |\n", q.id));
                }
            }
        }
        s
    }
}

/// The extras the Markdown table shows (bench.json keeps all of them).
const NOTE_KEYS: [&str; 11] = [
    "rows_per_s",
    "batches",
    "samples",
    "peak_rss_mb",
    "peer_peak_rss_mb",
    "value",
    "peer_value",
    "twin_loss_rel_diff",
    "peer_max_abs_diff",
    "batch_size",
    "hist_len",
];

/// A number in a table: 3 significant digits, thousands without a fraction.
fn short(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// The median (mean of the middle two for an even count); NaN for none.
pub fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The widest drop a noisy figure's own scatter can allow.
pub const MAX_NOISE_LIMIT: f64 = 0.5;

/// How far a comparison lets numbers move.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// A peer ratio may fall by at most this share of its baseline (0.15: 15%).
    pub max_drop: f64,
    /// A quality metric may move by at most this much (absolute) against its own machine's
    /// blessed value.
    pub quality_tol: f64,
    /// ... and by at most this much against a value blessed on another machine (a CPU model the
    /// baseline has no quality for): training rounds differently there, so the metrics move as
    /// much as a reseeding would on the gate's small test sets; this still catches a model that
    /// breaks.
    pub cross_machine_tol: f64,
}

/// [`Thresholds::cross_machine_tol`]'s default: 2.3x the largest cross-CPU move measured on the
/// gate (1.3e-2, `idw/hr@5/item=tail`, AMD EPYC vs Intel Xeon, 2026-12-02).
pub const CROSS_MACHINE_TOL: f64 = 0.03;

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            max_drop: 0.15,
            quality_tol: 1e-4,
            cross_machine_tol: CROSS_MACHINE_TOL,
        }
    }
}

/// One line of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareRow {
    /// `ratio` (peer / longtail), `time` (no peer: shown, not gated) or `quality`.
    pub kind: String,
    pub id: String,
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// `ok`, `FAIL`, `new`, `info`.
    pub status: String,
    pub note: String,
}

/// The comparison of a baseline with a new report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub rows: Vec<CompareRow>,
}

impl Comparison {
    pub fn failures(&self) -> usize {
        self.rows.iter().filter(|r| r.status == "FAIL").count()
    }

    pub fn markdown(&self) -> String {
        let mut s = String::from("| kind | id | baseline | new | change | status | note |\n");
        s.push_str("| --- | --- | ---: | ---: | ---: | --- | --- |\n");
        for r in &self.rows {
            let change = match (r.base, r.new) {
                (Some(b), Some(n)) if r.kind == "quality" => format!("{:+.2e}", n - b),
                (Some(b), Some(n)) if b != 0.0 => format!("{:+.1}%", 100.0 * (n / b - 1.0)),
                _ => "-".into(),
            };
            let num = |v: Option<f64>| match (v, r.kind.as_str()) {
                (Some(v), "quality") => format!("{v:.6}"),
                (Some(v), "ratio" | "family") => format!("{v:.3}x"),
                (Some(v), _) => short(v),
                (None, _) => "-".into(),
            };
            s.push_str(&format!(
                "| {} | {} | {} | {} | {change} | {} | {} |\n",
                r.kind,
                r.id,
                num(r.base),
                num(r.new),
                r.status,
                r.note
            ));
        }
        s
    }
}

/// Compares `new` against the baseline `base`: a peer ratio that fell by more than
/// `t.max_drop`, a quality metric that moved by more than `t.quality_tol`, and anything gated
/// in the baseline but missing now are failures. Times without a peer are shown, never gated.
pub fn compare(base: &BenchReport, new: &BenchReport, t: Thresholds) -> Comparison {
    let here = new.machine.baseline_key();
    let own = base.blessed_on(&here);
    let mut rows = Vec::new();
    // Speed against this machine's blessed figures where the baseline has them; a figure it
    // lacks (dropped as stale by a bless elsewhere, or new) against the blessing machine's.
    let (base_figures, family_spread): (Vec<Figure>, &BTreeMap<String, f64>) = match &own {
        Some(o) if !o.figures.is_empty() => (
            o.figures
                .iter()
                .chain(
                    base.figures
                        .iter()
                        .filter(|f| !o.figures.iter().any(|x| x.id == f.id)),
                )
                .cloned()
                .collect(),
            &o.family_spread,
        ),
        _ => (base.figures.clone(), &base.family_spread),
    };
    if own.as_ref().is_none_or(|o| o.figures.is_empty()) && !base.figures.is_empty() {
        rows.push(CompareRow {
            kind: "ratio".into(),
            id: "figures across machines".into(),
            base: None,
            new: None,
            status: "info".into(),
            note: format!(
                "the baseline has no figures blessed on this machine ('{here}'): ratios are \
                 compared with those blessed on '{}'",
                base.machine.baseline_key()
            ),
        });
    }
    for b in &base_figures {
        let n = new.figures.iter().find(|f| f.id == b.id);
        match (b.ratio, n) {
            (Some(br), Some(nf)) => {
                // A figure gates no tighter than its baseline measurements scatter (capped: a
                // figure noisier than that is shown, and says so, but hardly gates).
                let noise = (b.ratio_noise.unwrap_or(0.0) + nf.ratio_noise.unwrap_or(0.0))
                    .min(MAX_NOISE_LIMIT);
                let spread = b.run_spread.unwrap_or(0.0).min(MAX_NOISE_LIMIT);
                let limit = t.max_drop.max(noise).max(spread);
                let widened = if limit > t.max_drop {
                    let why = if spread >= noise {
                        "its run-to-run spread"
                    } else {
                        "its noise"
                    };
                    format!(" (limit widened to {why}, {:.0}%)", 100.0 * limit)
                } else {
                    String::new()
                };
                let (status, note) = match nf.ratio {
                    Some(nr) if nr >= br * (1.0 - limit) => ("ok", widened.trim().to_string()),
                    Some(nr) => (
                        "FAIL",
                        format!(
                            "ratio fell {:.1}% (limit {:.0}%){widened}",
                            100.0 * (1.0 - nr / br),
                            100.0 * limit
                        ),
                    ),
                    None => ("FAIL", "no peer measurement".into()),
                };
                rows.push(CompareRow {
                    kind: "ratio".into(),
                    id: b.id.clone(),
                    base: Some(br),
                    new: nf.ratio,
                    status: status.into(),
                    note,
                });
            }
            (Some(br), None) => rows.push(CompareRow {
                kind: "ratio".into(),
                id: b.id.clone(),
                base: Some(br),
                new: None,
                status: "FAIL".into(),
                note: "missing from the new report (bless a removal on purpose)".into(),
            }),
            (None, n) => rows.push(CompareRow {
                kind: "time".into(),
                id: b.id.clone(),
                base: Some(b.ours_median_ms),
                new: n.map(|f| f.ours_median_ms),
                status: "info".into(),
                note: "no peer: not gated".into(),
            }),
        }
    }
    // Families (`step`, `data`, ...): the geometric mean of their ratios must not fall by more
    // than `max_drop` either. One figure's noise averages out there, while a slowdown of the
    // shared code (every training step) does not.
    let mut families: Vec<String> = base_figures
        .iter()
        .filter(|f| f.ratio.is_some())
        .map(|f| family_of(&f.id).to_string())
        .collect();
    families.dedup();
    for fam in families {
        let pairs: Vec<(f64, f64)> = base_figures
            .iter()
            .filter(|b| family_of(&b.id) == fam)
            .filter_map(|b| {
                let n = new.figures.iter().find(|f| f.id == b.id)?;
                Some((b.ratio?, n.ratio?))
            })
            .filter(|(b, n)| *b > 0.0 && *n > 0.0)
            .collect();
        if pairs.len() < 2 {
            continue;
        }
        let gb = geometric_mean(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
        let gn = geometric_mean(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
        let spread = family_spread
            .get(&fam)
            .copied()
            .unwrap_or(0.0)
            .min(MAX_NOISE_LIMIT);
        let limit = t.max_drop.max(spread);
        let widened = if limit > t.max_drop {
            format!(
                " (limit widened to its run-to-run spread, {:.0}%)",
                100.0 * limit
            )
        } else {
            String::new()
        };
        let ok = gn >= gb * (1.0 - limit);
        rows.push(CompareRow {
            kind: "family".into(),
            id: format!("{fam}/* (geometric mean of {})", pairs.len()),
            base: Some(gb),
            new: Some(gn),
            status: if ok { "ok" } else { "FAIL" }.into(),
            note: if ok {
                widened.trim().to_string()
            } else {
                format!(
                    "ratio fell {:.1}% (limit {:.0}%){widened}",
                    100.0 * (1.0 - gn / gb),
                    100.0 * limit
                )
            },
        });
    }
    for f in &new.figures {
        if !base_figures.iter().any(|b| b.id == f.id) {
            rows.push(CompareRow {
                kind: if f.ratio.is_some() { "ratio" } else { "time" }.into(),
                id: f.id.clone(),
                base: None,
                new: f.ratio.or(Some(f.ours_median_ms)),
                status: "new".into(),
                note: "not in the baseline".into(),
            });
        }
    }
    // Different CPU kernels round differently (docs/guarantees.md): say so where it may explain
    // a moved metric.
    let kernels = if base.machine.cpu_kernels != new.machine.cpu_kernels {
        let name = |k: &str| {
            if k.is_empty() {
                "unrecorded".to_string()
            } else {
                k.to_string()
            }
        };
        format!(
            "; the baseline ran with CPU kernels '{}', this run with '{}'",
            name(&base.machine.cpu_kernels),
            name(&new.machine.cpu_kernels)
        )
    } else {
        String::new()
    };
    // Exact against this machine's blessed metrics where the baseline has them, else at the
    // cross-machine tolerance against the blessing machine's.
    let mut crossed = Vec::new();
    for blessed in &base.quality {
        let mine = own
            .as_ref()
            .and_then(|o| o.quality.iter().find(|q| q.id == blessed.id));
        let (bq, tol, cross) = match mine {
            Some(q) => (q, t.quality_tol, ""),
            None => {
                crossed.push(blessed.id.clone());
                (blessed, t.cross_machine_tol, " (across machines)")
            }
        };
        let nq = new.quality.iter().find(|q| q.id == bq.id);
        for (k, &bv) in &bq.metrics {
            let id = format!("{}/{k}", bq.id);
            let nv = nq.and_then(|q| q.metrics.get(k)).copied();
            let (status, note) = match nv {
                Some(v) if (v - bv).abs() <= tol || (v.is_nan() && bv.is_nan()) => {
                    ("ok", cross.trim().to_string())
                }
                Some(v) => (
                    "FAIL",
                    format!(
                        "moved by {:.2e} (tolerance {tol:.0e}){cross}{kernels}",
                        v - bv
                    ),
                ),
                None => ("FAIL", "missing from the new report".into()),
            };
            rows.push(CompareRow {
                kind: "quality".into(),
                id,
                base: Some(bv),
                new: nv,
                status: status.into(),
                note,
            });
        }
    }
    if !crossed.is_empty() {
        rows.push(CompareRow {
            kind: "quality".into(),
            id: format!("{} run(s) across machines", crossed.len()),
            base: None,
            new: None,
            status: "info".into(),
            note: format!(
                "the baseline has no quality blessed on this machine ('{here}') for {}: compared \
                 at {:.0e} with the values blessed on '{}' (bless on this machine for exact \
                 checks here)",
                crossed.join(", "),
                t.cross_machine_tol,
                base.machine.baseline_key()
            ),
        });
    }
    for nq in &new.quality {
        let bq = base.quality.iter().find(|q| q.id == nq.id);
        for (k, &v) in &nq.metrics {
            if bq.is_none_or(|b| !b.metrics.contains_key(k)) {
                rows.push(CompareRow {
                    kind: "quality".into(),
                    id: format!("{}/{k}", nq.id),
                    base: None,
                    new: Some(v),
                    status: "new".into(),
                    note: "not in the baseline".into(),
                });
            }
        }
    }
    Comparison { rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(step_ms: f64, auc: f64) -> BenchReport {
        BenchReport {
            longtail_version: "0".into(),
            git_revision: None,
            subset: "ci".into(),
            rounds: 3,
            started_unix_s: 0,
            wall_s: 1.0,
            machine: Machine::default(),
            tch: "0.24.0".into(),
            libtorch: None,
            peer_versions: BTreeMap::new(),
            figures: vec![
                Figure::new(
                    "step/basemodel",
                    Some("pytorch-eager"),
                    vec![step_ms, step_ms * 1.01, step_ms * 0.99],
                    vec![2.0, 2.1, 1.9],
                    BTreeMap::new(),
                ),
                Figure::new("step/unpaired", None, vec![5.0], vec![], BTreeMap::new()),
            ],
            quality: vec![QualityRun {
                id: "demo".into(),
                metrics: [("auc".to_string(), auc)].into(),
                wall_s: 1.0,
            }],
            family_spread: BTreeMap::new(),
            other_machines: Vec::new(),
        }
    }

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        let f = &report(1.0, 0.7).figures[0];
        assert_eq!(f.ours_median_ms, 1.0);
        assert_eq!(f.ratio, Some(2.0));
        // Per-round ratios 2.0, 2.079, 1.919: MAD 0.079, noise 2 * 0.079 / 2.
        assert!(
            (f.ratio_noise.unwrap() - 0.0792).abs() < 1e-3,
            "{:?}",
            f.ratio_noise
        );
    }

    #[test]
    fn a_slowdown_of_every_step_fails_the_family_even_within_each_figures_noise() {
        let steps = |scale: f64| BenchReport {
            figures: ["step/a", "step/b", "step/c"]
                .iter()
                .map(|id| {
                    Figure::new(
                        id,
                        Some("pytorch-eager"),
                        [1.0, 1.0, 1.0, 1.0, 1.0]
                            .iter()
                            .map(|v| v * scale)
                            .collect(),
                        vec![1.0, 1.3, 0.8, 1.2, 1.0],
                        BTreeMap::new(),
                    )
                })
                .collect(),
            ..report(1.0, 0.7)
        };
        let c = compare(&steps(1.0), &steps(1.25), Thresholds::default());
        let fam: Vec<_> = c.rows.iter().filter(|r| r.kind == "family").collect();
        assert_eq!(fam.len(), 1);
        assert_eq!(fam[0].status, "FAIL", "{}", c.markdown());
        assert_eq!(
            compare(&steps(1.0), &steps(1.0), Thresholds::default()).failures(),
            0
        );
        // A baseline blessed from runs whose family mean moved 22% between them gates the family
        // no tighter than that: 20% lower passes (saying why), 40% lower still fails.
        let base = merge_runs(&[steps(0.9), steps(1.0), steps(1.1)]).unwrap();
        let spread = base.family_spread["step"];
        assert!((spread - 0.2020).abs() < 1e-3, "{spread}");
        let c = compare(&base, &steps(1.25), Thresholds::default());
        let fam = c.rows.iter().find(|r| r.kind == "family").unwrap();
        assert_eq!(fam.status, "ok", "{}", c.markdown());
        assert!(fam.note.contains("run-to-run spread"), "{}", fam.note);
        let c = compare(&base, &steps(1.7), Thresholds::default());
        let fam = c.rows.iter().find(|r| r.kind == "family").unwrap();
        assert_eq!(fam.status, "FAIL", "{}", c.markdown());
    }

    /// CI's second measurement: each figure counts at its best run, so one slow run passes and a
    /// slowdown in both fails; quality comes from the run that has it.
    #[test]
    fn best_of_two_runs_fails_only_a_slowdown_both_show() {
        let mut second = report(1.3, 0.7);
        second.quality.clear();
        let both = best_of(&[report(1.0, 0.7), second.clone()]).unwrap();
        assert_eq!(both.figures[0].ratio, report(1.0, 0.7).figures[0].ratio);
        assert_eq!(both.quality, report(1.0, 0.7).quality);
        let base = report(1.0, 0.7);
        let one_slow = best_of(&[report(1.3, 0.7), report(1.0, 0.7)]).unwrap();
        assert_eq!(
            compare(&base, &one_slow, Thresholds::default()).failures(),
            0
        );
        let both_slow = best_of(&[report(1.3, 0.7), second]).unwrap();
        assert!(compare(&base, &both_slow, Thresholds::default()).failures() >= 1);
        assert!(best_of(&[]).is_err());
    }

    #[test]
    fn a_noisy_figure_gates_only_as_tightly_as_it_measures() {
        let noisy = |scale: f64| BenchReport {
            figures: vec![Figure::new(
                "data/x/import",
                Some("pandas"),
                [1.0, 1.0, 1.0, 1.0, 1.0]
                    .iter()
                    .map(|v| v * scale)
                    .collect(),
                vec![1.0, 1.6, 0.7, 1.3, 1.0],
                BTreeMap::new(),
            )],
            ..report(1.0, 0.7)
        };
        let base = noisy(1.0);
        let noise = base.figures[0].ratio_noise.unwrap();
        assert!(noise > 0.3, "{noise}");
        // 20% slower is within this figure's noise, and the table says why.
        let c = compare(&base, &noisy(1.2), Thresholds::default());
        assert_eq!(c.failures(), 0, "{}", c.markdown());
        assert!(c.markdown().contains("widened"));
        // Three times as slow is beyond any allowance (the widening is capped at 50%).
        assert_eq!(
            compare(&base, &noisy(3.0), Thresholds::default()).failures(),
            1
        );
    }

    #[test]
    fn a_baseline_from_several_runs_gates_each_figure_no_tighter_than_its_runs_moved() {
        let runs = [report(1.1, 0.7), report(1.0, 0.7), report(0.9, 0.7)];
        let base = merge_runs(&runs).unwrap();
        let f = &base.figures[0];
        // The median run's figure, with the runs' spread (2.222 - 1.818) / 2.0.
        assert_eq!(f.ours_ms, runs[1].figures[0].ours_ms);
        assert!((f.run_spread.unwrap() - 0.2020).abs() < 1e-3, "{f:?}");
        assert_eq!(
            base.figures[1].run_spread, None,
            "unpaired figures have no ratio"
        );
        // 16.7% lower: beyond --max-drop, within the figure's run-to-run spread.
        let c = compare(&base, &report(1.2, 0.7), Thresholds::default());
        let row = c.rows.iter().find(|r| r.id == "step/basemodel").unwrap();
        assert_eq!(row.status, "ok", "{}", c.markdown());
        assert!(row.note.contains("run-to-run spread"), "{}", row.note);
        // 23% lower fails.
        let c = compare(&base, &report(1.3, 0.7), Thresholds::default());
        assert!(c.failures() >= 1, "{}", c.markdown());
        // Runs whose quality metrics differ are not one tree: refused.
        let e = merge_runs(&[report(1.0, 0.7), report(1.0, 0.71)]).unwrap_err();
        assert!(e.to_string().contains("'demo'"), "{e}");
        // A speed-only run (no quality gate) joins the spread and keeps the first run's quality.
        let mut speed = report(1.3, 0.0);
        speed.quality.clear();
        let base = merge_runs(&[report(1.0, 0.7), speed]).unwrap();
        assert_eq!(base.quality, report(1.0, 0.7).quality);
        assert!(base.figures[0].run_spread.unwrap() > 0.2);
    }

    #[test]
    fn an_unchanged_report_passes_and_a_25_percent_slowdown_fails() {
        let base = report(1.0, 0.70);
        let same = compare(&base, &base, Thresholds::default());
        assert_eq!(same.failures(), 0, "{}", same.markdown());
        // 25% slower: the ratio falls by 20% (1 / 1.25), beyond the 15% limit.
        let slow = compare(&base, &report(1.25, 0.70), Thresholds::default());
        assert_eq!(slow.failures(), 1, "{}", slow.markdown());
        assert!(slow.markdown().contains("ratio fell 20.0%"));
        // Within the limit: 10% slower.
        assert_eq!(
            compare(&base, &report(1.1, 0.70), Thresholds::default()).failures(),
            0
        );
        // A changed metric fails; a tiny float wobble does not.
        let moved = compare(&base, &report(1.0, 0.7011), Thresholds::default());
        assert_eq!(moved.failures(), 1, "{}", moved.markdown());
        assert_eq!(
            compare(&base, &report(1.0, 0.70001), Thresholds::default()).failures(),
            0
        );
        // Removing a gated figure or a quality run fails until it is blessed.
        let mut gone = base.clone();
        gone.figures.remove(0);
        gone.quality.clear();
        assert_eq!(compare(&base, &gone, Thresholds::default()).failures(), 2);
        // Unpaired times and new figures are reported, never gated.
        let mut more = base.clone();
        more.figures.push(Figure::new(
            "step/x",
            None,
            vec![1.0],
            vec![],
            BTreeMap::new(),
        ));
        let c = compare(&base, &more, Thresholds::default());
        assert_eq!(c.failures(), 0);
        assert!(c.rows.iter().any(|r| r.id == "step/x" && r.status == "new"));
    }

    fn on(mut r: BenchReport, cpu: &str) -> BenchReport {
        r.machine.cpu_model = cpu.into();
        r
    }

    fn quality_failures(base: &BenchReport, new: &BenchReport) -> usize {
        compare(base, new, Thresholds::default())
            .rows
            .iter()
            .filter(|r| r.kind == "quality" && r.status == "FAIL")
            .count()
    }

    /// Quality is exact against the run's own machine's blessed metrics and loose (but still
    /// catching a broken model) against another machine's.
    #[test]
    fn quality_is_exact_on_its_own_machine_and_loose_across_machines() {
        let base = on(report(1.0, 0.70), "AMD EPYC");
        // Same machine: 1e-3 is a regression.
        assert_eq!(
            quality_failures(&base, &on(report(1.0, 0.701), "AMD EPYC")),
            1
        );
        // Another CPU model: 1e-2 is rounding carried through training; 0.05 is not.
        let c = compare(
            &base,
            &on(report(1.0, 0.71), "Intel Xeon"),
            Thresholds::default(),
        );
        assert_eq!(c.failures(), 0, "{}", c.markdown());
        let md = c.markdown();
        assert!(
            md.contains("across machines") && md.contains("Intel Xeon"),
            "{md}"
        );
        assert_eq!(
            quality_failures(&base, &on(report(1.0, 0.75), "Intel Xeon")),
            1
        );
        // Once the baseline carries quality blessed on that machine, it is exact there too.
        let mut both = base.clone();
        both.other_machines.push(MachineBaseline {
            machine: on(report(1.0, 0.71), "Intel Xeon").machine.baseline_key(),
            figures: Vec::new(),
            quality: report(1.0, 0.71).quality,
            family_spread: BTreeMap::new(),
        });
        assert_eq!(
            quality_failures(&both, &on(report(1.0, 0.71), "Intel Xeon")),
            0
        );
        assert_eq!(
            quality_failures(&both, &on(report(1.0, 0.712), "Intel Xeon")),
            1
        );
        assert_eq!(
            quality_failures(&both, &on(report(1.0, 0.70), "AMD EPYC")),
            0
        );
        // Other kernels or threads are another machine as far as exactness goes.
        let mut threads = on(report(1.0, 0.701), "AMD EPYC");
        threads.machine.threads = 2;
        assert_eq!(quality_failures(&base, &threads), 0);
    }

    /// Speed is gated against the run's own machine's blessed figures where the baseline has
    /// them, else against the blessing machine's (and says so).
    #[test]
    fn speed_is_gated_against_its_own_machines_figures() {
        // Blessed on Intel at 1 ms; the AMD entry blessed 0.5 ms (a faster machine for longtail).
        let mut base = on(report(1.0, 0.70), "Intel Xeon");
        let amd = on(report(0.5, 0.70), "AMD EPYC");
        base.other_machines.push(amd.own_machine());
        // 0.8 ms on AMD: fine against Intel's figures, a 37.5% slowdown against its own.
        let run = on(report(0.8, 0.70), "AMD EPYC");
        let c = compare(&base, &run, Thresholds::default());
        assert!(
            c.rows
                .iter()
                .any(|r| r.id == "step/basemodel" && r.status == "FAIL"),
            "{}",
            c.markdown()
        );
        let elsewhere = compare(
            &base,
            &on(report(0.8, 0.70), "Other CPU"),
            Thresholds::default(),
        );
        assert_eq!(elsewhere.failures(), 0, "{}", elsewhere.markdown());
        assert!(elsewhere.markdown().contains("figures across machines"));
        // A figure the machine's entry lacks (dropped as stale) is gated by the blessing
        // machine's value instead of not at all.
        base.other_machines[0]
            .figures
            .retain(|f| f.id != "step/basemodel");
        let fallback = |ms| {
            compare(
                &base,
                &on(report(ms, 0.70), "AMD EPYC"),
                Thresholds::default(),
            )
            .rows
            .into_iter()
            .find(|r| r.id == "step/basemodel")
            .map(|r| r.status)
        };
        assert_eq!(fallback(0.8).as_deref(), Some("ok"));
        assert_eq!(fallback(2.0).as_deref(), Some("FAIL"));
    }

    /// Blessing on one machine keeps the other machines' quality, except the runs named stale,
    /// and never keeps a set for the blessing machine itself.
    #[test]
    fn bless_carries_other_machines_quality_except_stale_runs() {
        let mut old = on(report(1.0, 0.70), "AMD EPYC");
        old.quality.push(QualityRun {
            id: "idw".into(),
            metrics: [("hr@5".to_string(), 0.3)].into(),
            wall_s: 1.0,
        });
        let mut new = on(report(1.0, 0.71), "Intel Xeon");
        new.quality.push(QualityRun {
            id: "idw".into(),
            metrics: [("hr@5".to_string(), 0.31)].into(),
            wall_s: 1.0,
        });
        let mut kept = new.clone();
        let notes = kept.carry_machines(&old, &[]);
        assert_eq!(kept.other_machines.len(), 1, "{notes:?}");
        let amd = kept.blessed_on(&old.machine.baseline_key()).unwrap();
        assert_eq!(amd.quality, old.quality);
        assert_eq!(amd.figures, old.figures);
        let mut stale = new.clone();
        let notes = stale.carry_machines(&old, &["idw".to_string(), "step/basemodel".into()]);
        let amd = stale.blessed_on(&old.machine.baseline_key()).unwrap();
        assert_eq!(amd.quality.len(), 1);
        assert_eq!(amd.quality[0].id, "demo");
        assert_eq!(amd.figures.len(), 1, "{:?}", amd.figures);
        assert!(
            notes[0].contains("dropped: step/basemodel, idw"),
            "{notes:?}"
        );
        // AMD then checks demo exactly and idw across machines.
        let amd_run = on(report(1.0, 0.70), "AMD EPYC");
        let c = compare(&stale, &amd_run, Thresholds::default());
        assert!(c.markdown().contains("idw"), "{}", c.markdown());
        let mut all = new.clone();
        all.carry_machines(&old, &["all".to_string()]);
        assert!(all.other_machines.is_empty());
        // Blessing again on the same machine replaces its own set and keeps the others.
        let mut again = on(report(1.0, 0.72), "Intel Xeon");
        again.carry_machines(&kept, &[]);
        assert_eq!(again.other_machines.len(), 1);
        assert_eq!(again.other_machines[0].machine, old.machine.baseline_key());
        // The field survives the JSON round trip.
        let text = serde_json::to_string(&kept).unwrap();
        let back: BenchReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, kept);
    }

    /// Runs of different builds or machines are not blessed into one baseline.
    #[test]
    fn bless_refuses_runs_of_different_builds_or_machines() {
        let mut a = report(1.0, 0.7);
        a.git_revision = Some("abc".into());
        let mut b = a.clone();
        assert!(merge_runs(&[a.clone(), b.clone()]).is_ok());
        b.git_revision = Some("def".into());
        let e = merge_runs(&[a.clone(), b]).unwrap_err().to_string();
        assert!(e.contains("abc") && e.contains("def"), "{e}");
        let e = merge_runs(&[a.clone(), on(a.clone(), "Other CPU")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("different machines") && e.contains("Other CPU"),
            "{e}"
        );
    }

    #[test]
    fn json_round_trip_and_markdown() {
        let r = report(1.0, 0.7);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bench.json");
        r.write(&p).unwrap();
        assert_eq!(BenchReport::read(&p).unwrap(), r);
        let md = r.markdown();
        assert!(
            md.contains("| step/basemodel | 1.00 | pytorch-eager | 2.00 | 2.00x |"),
            "{md}"
        );
        assert!(md.contains("| demo | auc | 0.700000 |"), "{md}");
        std::fs::write(&p, "{").unwrap();
        assert!(BenchReport::read(&p)
            .unwrap_err()
            .to_string()
            .contains("bench.json"));
    }
}
