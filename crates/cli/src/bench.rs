//! `longtail bench suite | compare | bless | gate | docs`: argument plumbing around
//! `longtail_train::bench`.

use crate::BenchCommand;
use anyhow::{bail, Context, Result};
use longtail_core::{DeviceSpec, Registry};
use longtail_data::atomic::{guard_output, Replaceable};
use longtail_train::bench::report::{compare, BenchReport, Thresholds};
use std::path::Path;

/// Pins libtorch's and rayon's threads (rayon reads the variable when its pool starts, which is
/// after this), so same-seed CPU runs repeat exactly and both sides of a ratio get the same.
fn pin_threads(threads: usize) -> Result<()> {
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    tch::set_num_threads(threads as i32);
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    std::env::set_var("OMP_NUM_THREADS", threads.to_string());
    Ok(())
}

/// The last line of a comparison table `bench compare --out` wrote: the mark that lets a later
/// run replace it, and nothing else.
const COMPARE_MARK: &str = "<!-- written by longtail bench compare -->";

/// Whether the file's last non-empty line is `mark`.
fn ends_with_line(path: &Path, mark: &str) -> bool {
    std::fs::read_to_string(path)
        .is_ok_and(|t| t.lines().rev().find(|l| !l.trim().is_empty()) == Some(mark))
}

pub fn run(registry: &Registry, cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Compare {
            base,
            new,
            max_drop,
            quality_tol,
            cross_machine_tol,
            out,
            only,
        } => {
            if !(0.0..1.0).contains(&max_drop)
                || quality_tol.is_nan()
                || quality_tol < 0.0
                || cross_machine_tol.is_nan()
                || cross_machine_tol < 0.0
            {
                bail!("--max-drop must be in [0, 1), --quality-tol and --cross-machine-tol >= 0");
            }
            if let Some(o) = &out {
                let mut inputs: Vec<&Path> = vec![base.as_path()];
                inputs.extend(new.iter().map(|p| p.as_path()));
                guard_output(
                    o,
                    &inputs,
                    false,
                    Replaceable::If(&|p| ends_with_line(p, COMPARE_MARK)),
                    "comparison table",
                )?;
            }
            let mut b = BenchReport::read(&base)?;
            let runs = new
                .iter()
                .map(|p| BenchReport::read(p))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let mut n = longtail_train::bench::report::best_of(&runs)?;
            if let Some(p) = &only {
                for r in [&mut b, &mut n] {
                    r.figures.retain(|f| f.id.starts_with(p.as_str()));
                    r.quality.retain(|q| q.id.starts_with(p.as_str()));
                    for m in &mut r.other_machines {
                        m.figures.retain(|f| f.id.starts_with(p.as_str()));
                        m.quality.retain(|q| q.id.starts_with(p.as_str()));
                    }
                }
            }
            let c = compare(
                &b,
                &n,
                Thresholds {
                    max_drop,
                    quality_tol,
                    cross_machine_tol,
                },
            );
            let md = c.markdown();
            println!("{md}");
            if let Some(o) = &out {
                let page = format!("{}\n{COMPARE_MARK}\n", md.trim_end());
                longtail_data::atomic::write_bytes(o, page.as_bytes())?;
            }
            let fails = c.failures();
            // Repeated below the table, which can be long, so the end of a CI log names them.
            for r in c.rows.iter().filter(|r| r.status == "FAIL") {
                println!("FAIL {} {}: {}", r.kind, r.id, r.note);
            }
            if fails > 0 {
                bail!(
                    "{fails} regression(s) against {}: a peer ratio fell by more than {:.0}% or a \
                     quality metric moved by more than {quality_tol:e} (see the table above; bless \
                     an intended change with `longtail bench bless`)",
                    base.display(),
                    100.0 * max_drop
                );
            }
            println!("no regression against {}", base.display());
            Ok(())
        }
        BenchCommand::Bless {
            new,
            baseline,
            stale,
        } => {
            let inputs: Vec<&Path> = new.iter().map(|p| p.as_path()).collect();
            guard_output(
                &baseline,
                &inputs,
                false,
                Replaceable::If(&|p| BenchReport::read(p).is_ok()),
                "benchmark baseline (bench.json)",
            )?;
            let runs = new
                .iter()
                .map(|p| BenchReport::read(p))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let mut n = longtail_train::bench::report::merge_runs(&runs)?;
            let known = |s: &str| {
                s == "all"
                    || n.quality.iter().any(|q| q.id == s)
                    || n.figures.iter().any(|f| f.id == s)
            };
            if let Some(s) = stale.iter().find(|s| !known(s)) {
                let ids: Vec<&str> = n.quality.iter().map(|q| q.id.as_str()).collect();
                bail!(
                    "--stale: no figure or quality run '{s}' in the new runs (quality runs: {}; \
                     figures by id, e.g. step/twotower; or `all`)",
                    ids.join(", ")
                );
            }
            match BenchReport::read(&baseline) {
                Ok(b) => {
                    let c = compare(&b, &n, Thresholds::default());
                    println!("{}", c.markdown());
                    let changed = c.rows.iter().filter(|r| r.status != "ok").count();
                    println!(
                        "{changed} of {} rows differ from the old baseline (FAIL/new/info above)",
                        c.rows.len()
                    );
                    for line in n.carry_machines(&b, &stale) {
                        println!("{line}");
                    }
                }
                Err(_) => println!(
                    "no readable baseline at {}: starting one",
                    baseline.display()
                ),
            }
            n.write(&baseline)?;
            println!(
                "wrote {}: commit it with the reason for the change",
                baseline.display()
            );
            Ok(())
        }
        BenchCommand::Gate {
            config,
            only,
            threads,
        } => {
            pin_threads(threads)?;
            let only = (!only.is_empty()).then_some(only.as_slice());
            let cfgs = longtail_train::bench::gate::gate_configs(registry, &config, only)?;
            let tmp = tempfile::tempdir().context("cannot create a temporary folder")?;
            let runs = longtail_train::bench::gate::run_gate(registry, &cfgs, tmp.path(), &|l| {
                tracing::info!("{l}")
            })?;
            println!("{}", serde_json::to_string_pretty(&runs)?);
            Ok(())
        }
        BenchCommand::Worker {
            kind,
            dataset,
            out,
            repeats,
        } => {
            if kind != "data" {
                bail!("unknown worker '{kind}' (valid: data)");
            }
            let v = longtail_train::bench::workers::data_worker(&dataset, &out, repeats)?;
            println!("{v}");
            Ok(())
        }
        BenchCommand::Docs {
            report,
            out,
            template,
        } => {
            guard_output(
                &out,
                &[report.as_path(), template.as_path()],
                false,
                Replaceable::If(&|p| {
                    std::fs::read_to_string(p)
                        .is_ok_and(|t| t.contains(longtail_train::bench::suite::GENERATED_BY))
                }),
                "benchmark page",
            )?;
            let r = BenchReport::read(&report)?;
            let t = std::fs::read_to_string(&template)
                .with_context(|| format!("cannot read the docs template {}", template.display()))?;
            let page = longtail_train::bench::suite::docs_page(&t, &r, &report)?;
            longtail_data::atomic::write_bytes(&out, page.as_bytes())?;
            println!("wrote {} from {}", out.display(), report.display());
            Ok(())
        }
        BenchCommand::Suite {
            out,
            subset,
            rounds,
            models,
            no_gate,
            gate,
            threads,
            gpu,
        } => {
            pin_threads(threads)?;
            let subset: longtail_train::bench::suite::Subset = subset.parse()?;
            if rounds == 0 {
                bail!("--rounds must be at least 1");
            }
            let gpu = match gpu.as_str() {
                "off" => None,
                "auto" => DeviceSpec::Auto
                    .resolve()
                    .ok()
                    .filter(|d| matches!(d, tch::Device::Cuda(_))),
                other => bail!("--gpu must be auto or off, got '{other}'"),
            };
            let opts = longtail_train::bench::suite::SuiteOptions {
                subset,
                rounds,
                models: (!models.is_empty()).then_some(models),
                gate: (!no_gate).then_some(gate),
                threads,
                gpu,
                repo: std::env::current_dir()?,
                git_revision: option_env!("LONGTAIL_GIT_REV")
                    .filter(|r| !r.is_empty())
                    .map(str::to_string),
            };
            let report = longtail_train::bench::suite::run_suite(registry, &opts, &out, &|l| {
                tracing::info!("{l}")
            })?;
            print_written(&out, &report);
            Ok(())
        }
    }
}

fn print_written(out: &Path, report: &BenchReport) {
    println!("{}", report.markdown());
    println!(
        "wrote {}, {} and {}",
        out.join("bench.json").display(),
        out.join("bench.md").display(),
        out.join("ratios.png").display()
    );
}
