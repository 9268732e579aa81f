//! Subcommand bodies: argument plumbing around the library crates.

use crate::{Command, RunArgs};
use anyhow::{bail, Context, Result};
use longtail_core::{runtime, DeviceBatch, DeviceSpec, Registry};
use longtail_data::{build_ctr_dataset, generate, SynthConfig};
use longtail_train::{run_experiment_with, ExperimentConfig, RunOutcome, ScheduleRegistry};
use std::path::Path;
use std::time::Instant;

pub fn run(registry: &Registry, schedules: &ScheduleRegistry, cmd: Command) -> Result<()> {
    match cmd {
        Command::Demo { run } => {
            let cfg = ExperimentConfig::demo();
            train_and_print(registry, schedules, cfg, &run, "longtail demo", false)
        }
        Command::Train {
            config,
            experiment,
            model,
            seeds,
            skip_finished,
            resume,
            set,
            run,
        } => {
            // An unknown model fails before the config is read or any data is touched.
            if let Some(m) = &model {
                registry.check(m)?;
            }
            let mut cfgs = match &config {
                Some(path) => longtail_train::load_experiments(path, experiment.as_deref(), &set)?,
                None if experiment.is_some() => bail!("--experiment needs --config FILE"),
                None => {
                    tracing::info!(
                        "note: no --config given: training the built-in demo (the job of \
                         `longtail demo`, spelled out in configs/demo.toml)"
                    );
                    let mut demo = ExperimentConfig::demo();
                    if !set.is_empty() {
                        demo = demo_with_sets(demo, &set)?;
                    }
                    vec![(demo.name.clone(), demo)]
                }
            };
            for (_, cfg) in &mut cfgs {
                if let Some(m) = &model {
                    if *m != cfg.model.name {
                        cfg.model.params = toml::Table::new();
                    }
                    cfg.model.name = m.clone();
                }
                if let Some(e) = run.epochs {
                    cfg.train.epochs = e;
                }
            }
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            let seeds: Vec<Option<u64>> = if seeds.is_empty() {
                vec![run.seed]
            } else {
                seeds.into_iter().map(Some).collect()
            };
            // Every (block, seed) run, checked before the first one trains: each block's config,
            // and each run folder (none may collide with another, replace an input, or replace
            // something that is not an earlier run).
            let origin = config
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "the built-in demo".into());
            let mut runs: Vec<ExperimentConfig> = Vec::new();
            let mut dirs: Vec<(std::path::PathBuf, String)> = Vec::new();
            // Blocks are named by their `[experiments.NAME]` key (the run's `name` may differ).
            for (label, cfg) in &cfgs {
                let block = |e: longtail_train::TrainError| {
                    anyhow::anyhow!("config {origin}, experiment '{label}': {e}")
                };
                longtail_train::check_experiment_with(registry, schedules, cfg).map_err(block)?;
                for &seed in &seeds {
                    let mut c = cfg.clone();
                    if let Some(s) = seed {
                        c.seed = s;
                    }
                    let dir = longtail_train::check_run_dir(&run.out, &c).map_err(block)?;
                    if let Some((_, other)) = dirs.iter().find(|(d, _)| *d == dir) {
                        bail!(
                            "config {origin}: experiments '{other}' and '{}' would both write the \
                             run folder {} (same name, model and seed); give one of them another \
                             `name`",
                            label,
                            dir.display()
                        );
                    }
                    dirs.push((dir, label.clone()));
                    runs.push(c);
                }
            }
            let total = runs.len();
            for (k, cfg) in runs.into_iter().enumerate() {
                if skip_finished || resume {
                    let mut eff = cfg.clone();
                    apply_overrides(&mut eff, &run);
                    if let Some(dir) =
                        longtail_train::finished_run(registry, schedules, &run.out, &eff)
                    {
                        tracing::info!(
                            "skip [{}/{total}]: {} already holds this run (same config hash)",
                            k + 1,
                            dir.display()
                        );
                        continue;
                    }
                }
                if total > 1 {
                    tracing::info!(
                        "== [{}/{total}] {} (model {})",
                        k + 1,
                        cfg.name,
                        cfg.model.name
                    );
                }
                train_and_print(registry, schedules, cfg, &run, &command, resume)?;
            }
            Ok(())
        }
        Command::Synth {
            out,
            config,
            seed,
            params,
        } => synth(&out, config.as_deref(), seed, &params),
        Command::Import {
            format,
            input,
            output,
            columns,
            items,
            items_format,
            items_columns,
            price_buckets,
        } => import(
            &format,
            &input,
            &output,
            columns.as_deref(),
            items.as_deref().zip(items_format.as_deref()),
            items_columns.as_deref(),
            price_buckets,
        ),
        Command::Prepare { config, out, seed } => prepare(&config, &out, seed),
        Command::Eval {
            scores,
            run,
            out,
            k,
        } => {
            let (scores, out) = match (scores, run) {
                (Some(s), _) => (s, out.context("--out is required with --scores")?),
                (None, Some(r)) => (
                    r.join(longtail_train::TEST_SCORES),
                    out.unwrap_or_else(|| r.join("eval")),
                ),
                (None, None) => bail!("give --scores FILE or --run RUN_DIR"),
            };
            let m = longtail_train::evaluate_scores_file(&scores, &out, &k)?;
            for (key, v) in &m {
                println!("{key:<24} {v:.6}");
            }
            println!("wrote {}", out.join("metrics.json").display());
            Ok(())
        }
        Command::Report {
            runs,
            out,
            base,
            name,
            preamble,
            copy_manifests,
        } => {
            if runs.is_empty() {
                bail!("give at least one run folder (or a folder of run folders)");
            }
            let preamble_text = match &preamble {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .with_context(|| format!("cannot read --preamble {}", p.display()))?,
                ),
                None => None,
            };
            let opts = longtail_train::ReportOptions {
                base,
                name: name.clone(),
                preamble: preamble_text,
                preamble_from: preamble,
                copy_manifests,
            };
            let rows = longtail_train::write_report(&runs, &out, &opts)?;
            let stem = name.as_deref().unwrap_or("report");
            println!(
                "{} rows over {} run folder(s); wrote {} and {}",
                rows.len(),
                runs.len(),
                out.join(format!("{stem}.md")).display(),
                out.join(format!("{stem}.json")).display()
            );
            Ok(())
        }
        Command::BenchDensity {
            items,
            dim,
            chunk,
            device,
        } => bench_density(items, dim, chunk, &device),
        Command::Bench {
            command: Some(c), ..
        } => crate::bench::run(registry, c),
        Command::Bench {
            command: None,
            model,
            device,
            steps,
            batch_size,
        } => bench(registry, &model, &device, steps, batch_size),
        Command::Data {
            command:
                crate::DataCommand::Stats {
                    file,
                    format,
                    columns,
                    json,
                    head_item_share,
                    plots,
                },
        } => {
            // The range of `[samples] head_item_share`, checked before the data are read.
            longtail_data::ctr::check_head_item_share(head_item_share)
                .map_err(|m| anyhow::anyhow!("--head-item-share: {m}"))?;
            let table = match format {
                Some(f) => {
                    let mapping = columns.as_deref().map(str::parse).transpose()?;
                    longtail_data::import_with(f.parse()?, &file, mapping.as_ref())?.interactions
                }
                None => longtail_data::Interactions::read_parquet(&file)?,
            };
            let s = longtail_data::dataset_stats(&table, &Default::default(), head_item_share)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!(
                    "{}: {} interactions, {} users, {} items, density {:.2e}",
                    file.display(),
                    s.interactions,
                    s.users,
                    s.items,
                    s.density
                );
                println!("time range: {} .. {} (unix s)", s.ts_min, s.ts_max);
                let p = &s.interactions_per_user;
                println!(
                    "per user: min {} median {} mean {:.1} p90 {} max {}",
                    p.min, p.median, p.mean, p.p90, p.max
                );
                let p = &s.interactions_per_item;
                println!(
                    "per item: min {} median {} mean {:.1} p90 {} max {}",
                    p.min, p.median, p.mean, p.p90, p.max
                );
                for g in longtail_data::USER_GROUP_NAMES {
                    println!(
                        "{g:>4} users: {:5.1}% of users, {:5.1}% of interactions",
                        100.0 * s.user_group_share[g],
                        100.0 * s.user_group_interaction_share[g]
                    );
                }
                for g in longtail_data::ITEM_GROUP_NAMES {
                    println!(
                        "{g:>4} items: {:5.1}% of items, {:5.1}% of interactions",
                        100.0 * s.item_group_share[g],
                        100.0 * s.item_group_interaction_share[g]
                    );
                }
                println!("item popularity Gini: {:.3}", s.item_gini);
            }
            if let Some(dir) = plots {
                let (users, items) = longtail_data::activity_counts(&table);
                let name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let pngs = [
                    (
                        dir.join("user_activeness.png"),
                        longtail_eval::plot_long_tail(
                            &users,
                            &format!("User activeness: {name}"),
                            "users ranked by interactions",
                            "interactions",
                        )?,
                    ),
                    (
                        dir.join("item_popularity.png"),
                        longtail_eval::plot_long_tail(
                            &items,
                            &format!("Item popularity: {name}"),
                            "items ranked by interactions",
                            "interactions",
                        )?,
                    ),
                ];
                let png = longtail_data::outputs::is_png;
                for (path, _) in &pngs {
                    longtail_data::atomic::guard_output(
                        path,
                        &[file.as_path()],
                        false,
                        longtail_data::atomic::Replaceable::If(&png),
                        "plot",
                    )?;
                }
                for (path, bytes) in &pngs {
                    longtail_data::atomic::write_bytes(path, bytes)?;
                }
                tracing::info!("wrote {} and {}", pngs[0].0.display(), pngs[1].0.display());
            }
            Ok(())
        }
        Command::Models { name: None, .. } => {
            for (name, description) in registry.list() {
                println!("{name:<16} {description}");
            }
            Ok(())
        }
        Command::Models {
            name: Some(name),
            json,
        } => {
            let d = registry.describe(&name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                print!("{}", d.render_text());
            }
            Ok(())
        }
        Command::Check {
            config,
            experiment,
            set,
            brief,
        } => check(
            registry,
            schedules,
            &config,
            experiment.as_deref(),
            &set,
            brief,
        ),
        Command::Completions { shell } => {
            let mut cmd = <crate::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "longtail", &mut std::io::stdout());
            Ok(())
        }
        Command::Schedules => {
            for (name, description, tasks) in schedules.list() {
                let tasks: Vec<&str> = tasks
                    .iter()
                    .map(|t| match t {
                        longtail_core::Task::Ctr => "ctr",
                        longtail_core::Task::Retrieval => "retrieval",
                    })
                    .collect();
                println!("{name:<12} [{}] {description}", tasks.join(", "));
            }
            Ok(())
        }
        Command::Doctor => doctor(),
    }
}

fn import(
    format: &str,
    input: &Path,
    output: &Path,
    columns: Option<&str>,
    items: Option<(&Path, &str)>,
    items_columns: Option<&str>,
    price_buckets: usize,
) -> Result<()> {
    let format: longtail_data::ImportFormat = format.parse()?;
    let mapping: Option<longtail_data::ColumnMapping> = columns.map(str::parse).transpose()?;
    let inputs: Vec<&Path> = std::iter::once(input)
        .chain(items.map(|(p, _)| p))
        .collect();
    // Where it will write is checked first, so a doomed import does not read the log at all.
    longtail_data::outputs::check_import_outputs(output, &inputs, items.is_some())?;
    let imported = longtail_data::import_with(format, input, mapping.as_ref())?;
    // Item features are read before anything is written, so a bad items file leaves no output.
    let features = match items {
        Some((path, kind)) => {
            let src = longtail_data::ItemSource::from_format_name(
                kind,
                path,
                price_buckets,
                items_columns,
            )?;
            Some(src.read(&imported.item_vocab)?)
        }
        None => None,
    };
    // All outputs or none: table, vocabularies and item features are renamed into place together.
    let paths =
        longtail_data::outputs::write_import(&imported, features.as_ref(), output, &inputs)?;
    let (users, items_vocab) = (&paths.user_vocab, &paths.item_vocab);
    let t = &imported.interactions;
    println!(
        "imported {} rows ({} users, {} items) from {} as {format}; wrote {}, {}, {}",
        t.len(),
        imported.user_vocab.len() - 1,
        imported.item_vocab.len() - 1,
        input.display(),
        output.display(),
        users.display(),
        items_vocab.display()
    );
    if let Some(f) = features {
        let path = &paths.items;
        let names: Vec<String> = f
            .fields
            .iter()
            .map(|c| format!("{} ({} values)", c.name, c.vocab.len() - 1))
            .chain(f.lists.iter().map(|l| {
                format!(
                    "{} ({} values, {} items covered)",
                    l.name,
                    l.vocab.len() - 1,
                    l.covered()
                )
            }))
            .collect();
        println!(
            "item features {}: wrote {}",
            names.join(", "),
            path.display()
        );
    }
    Ok(())
}

fn prepare(config: &Path, out: &Path, seed: Option<u64>) -> Result<()> {
    // Includes resolved and relative data paths anchored, as for `train`; a file without
    // includes is parsed from its own text so errors keep its line numbers.
    let doc = longtail_data::config_file::read_config(config)?;
    let text = match doc.text {
        Some(t) => t,
        None => toml::to_string(&doc.table)?,
    };
    let mut cfg = longtail_data::PrepareConfig::from_toml(&text, &config.display().to_string())?;
    if let Some(s) = seed {
        cfg.seed = s;
    }
    // The config is an input too: replacing a folder that holds it would delete it (prepare
    // itself checks the data's inputs; they are named here too so the first error is the right one).
    let mut inputs = cfg.data.input_paths();
    inputs.push(config.to_path_buf());
    let inputs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    longtail_data::atomic::guard_output(
        out,
        &inputs,
        true,
        longtail_data::atomic::Replaceable::If(&longtail_data::prepare::is_prepared_folder),
        "prepared folder",
    )?;
    let started = std::time::Instant::now();
    let log = |stage: &str| {
        tracing::info!("[{:>6.1}s] {stage}", started.elapsed().as_secs_f64());
    };
    let m = longtail_data::prepare(&cfg, out, &log)?;
    for w in &m.warnings {
        tracing::warn!("{w}");
    }
    let [t, b, h] = m.users_per_group;
    println!(
        "{}: {} interactions, {} users, {} items; samples train/valid/test = {}/{}/{}",
        m.config.dataset,
        m.interactions,
        m.users,
        m.items,
        m.train.samples,
        m.valid.samples,
        m.test.samples
    );
    println!(
        "users by train activeness (tail <= {} < body <= {} < head): {t}/{b}/{h}; head items: {}",
        m.activeness.tail_max, m.activeness.body_max, m.head_items
    );
    if let (Some(a), Some(b), Some(c)) = (m.train.sequences, m.valid.sequences, m.test.sequences) {
        println!("sequences train/valid/test = {a}/{b}/{c}");
    }
    println!("wrote {} in {:.1}s", out.display(), m.wall_s);
    Ok(())
}

/// The built-in demo with `--set` overrides (through its TOML form, so the same rules apply).
fn demo_with_sets(
    demo: ExperimentConfig,
    set: &[longtail_data::config_file::Assignment],
) -> Result<ExperimentConfig> {
    let mut t = toml::Table::try_from(&demo)?;
    for a in set {
        a.apply(&mut t)?;
    }
    let text = toml::to_string(&t)?;
    Ok(longtail_train::load_experiment(
        &text,
        "the built-in demo",
        None,
    )?)
}

/// `longtail check`: every chosen block checked as `train` checks it before the first run, plus
/// its data paths; the effective configs on stdout.
fn check(
    registry: &Registry,
    schedules: &ScheduleRegistry,
    config: &Path,
    experiment: Option<&str>,
    set: &[longtail_data::config_file::Assignment],
    brief: bool,
) -> Result<()> {
    let origin = config.display().to_string();
    let text =
        std::fs::read_to_string(config).with_context(|| format!("cannot read config {origin}"))?;
    // Every block by default: a check that skipped blocks would miss the typo it is for.
    let selection = match experiment {
        Some(e) => Some(e),
        None if longtail_train::experiment_names(&text).is_empty() => None,
        None => Some("all"),
    };
    let cfgs = longtail_train::load_experiments(config, selection, set)?;
    for (label, cfg) in &cfgs {
        let block = |e: longtail_train::TrainError| {
            anyhow::anyhow!("config {origin}, experiment '{label}': {e}")
        };
        longtail_train::check_experiment_with(registry, schedules, cfg).map_err(block)?;
        for p in cfg.data.input_paths() {
            if !p.exists() {
                bail!(
                    "config {origin}, experiment '{label}': data: {} not found (a relative path \
                     is looked up beside the config, then in the working directory, then under \
                     $LONGTAIL_DATA_DIR = {})",
                    p.display(),
                    longtail_train::experiment::real_data_dir().display()
                );
            }
        }
        if !brief {
            let (_, hash) =
                longtail_train::config_record(registry, schedules, cfg).map_err(block)?;
            println!("# experiment '{label}' (config_hash {hash})");
            println!(
                "{}",
                longtail_train::effective_toml(registry, schedules, cfg).map_err(block)?
            );
        }
    }
    tracing::info!(
        "ok: {} experiment(s) in {origin} checked (data paths, model params, schedules, loss terms)",
        cfgs.len()
    );
    Ok(())
}

/// `--seed` and `--epochs` over a config (what the run, and its config hash, will be).
fn apply_overrides(cfg: &mut ExperimentConfig, run: &RunArgs) {
    if let Some(s) = run.seed {
        cfg.seed = s;
    }
    if let Some(e) = run.epochs {
        cfg.train.epochs = e;
    }
}

fn train_and_print(
    registry: &Registry,
    schedules: &ScheduleRegistry,
    mut cfg: ExperimentConfig,
    run: &RunArgs,
    command: &str,
    resume: bool,
) -> Result<()> {
    let device: DeviceSpec = run.device.parse()?;
    apply_overrides(&mut cfg, run);
    let rev = option_env!("LONGTAIL_GIT_REV").filter(|r| !r.is_empty());
    let RunOutcome { dir, manifest } = run_experiment_with(
        registry, schedules, &cfg, device, &run.out, command, rev, resume,
    )?;
    let d = &manifest.dataset;
    println!(
        "{} on {} ({} interactions; {} train / {} valid / {} test samples), device {}, seed {}",
        manifest.model,
        d.name,
        d.interactions,
        d.train_samples,
        d.valid_samples,
        d.test_samples,
        manifest.device,
        manifest.seed
    );
    println!("{:<16} {:>8}", "metric (test)", "value");
    println!("{:-<16} {:->8}", "", "");
    let keys: &[&str] = if manifest.retrieval.is_some() {
        &longtail_train::retrieval::RETRIEVAL_SUMMARY
    } else {
        &longtail_train::report::CTR_SUMMARY
    };
    for &key in keys {
        match manifest.metrics.get(key) {
            Some(v) if v.is_finite() => println!("{key:<16} {v:>8.4}"),
            _ => println!("{key:<16} {:>8}", "n/a"),
        }
    }
    // The files as written (vocabularies, stage folders and item tables vary by run).
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    println!(
        "run folder: {} ({}) in {:.1}s",
        dir.display(),
        files.join(", "),
        manifest.wall_s
    );
    Ok(())
}

/// `longtail bench-density`: one IDW sleep phase on random representations, timed after a
/// warm-up on 1,000 items (so CUDA start-up is not counted).
fn bench_density(items: i64, dim: i64, chunk: i64, device: &str) -> Result<()> {
    if items < 2 || dim < 1 || chunk < 1 {
        bail!("--items must be >= 2, --dim and --chunk >= 1");
    }
    // Representations, weights and one [chunk, N] block of kernel values with its temporaries.
    let bytes = (items as f64) * (dim as f64 * 4.0 * 3.0 + 16.0)
        + (chunk.min(items) as f64) * (items as f64) * 4.0 * 4.0;
    longtail_data::memory::check_fits(bytes, "--items", "one sleep phase")?;
    let device = device.parse::<DeviceSpec>()?.resolve()?;
    longtail_core::seed::seed_everything(1);
    let run = |n: i64| -> Result<(f64, longtail_core::density::SleepStats)> {
        let opts = (tch::Kind::Float, device);
        let reps = tch::Tensor::randn([n, dim], opts);
        let w = tch::Tensor::ones([n], opts) / n as f64;
        let valid = tch::Tensor::ones([n], (tch::Kind::Bool, device));
        let t = Instant::now();
        let (w2, stats) =
            tch::no_grad(|| longtail_core::density::sleep_phase(&reps, &w, 0.9, &valid, chunk))?;
        // Reading a value waits for the device.
        let _ = w2.sum(tch::Kind::Float).double_value(&[]);
        Ok((t.elapsed().as_secs_f64(), stats))
    };
    run(1000.min(items))?;
    let (secs, stats) = run(items)?;
    let out = serde_json::json!({
        "items": items,
        "dim": dim,
        "chunk": chunk,
        "device": longtail_core::device::device_name(device),
        "sleep_phase_s": secs,
        "pairs_per_s": (items as f64) * (items as f64) / secs.max(1e-12),
        "bandwidth": stats.bandwidth,
        "threads": tch::get_num_threads(),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn synth(out: &Path, config: Option<&Path>, seed: u64, a: &crate::SynthArgs) -> Result<()> {
    let mut cfg: SynthConfig = match config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("config {}", p.display()))?
        }
        None => SynthConfig::default(),
    };
    macro_rules! set {
        ($($f:ident),*) => { $(if let Some(v) = a.$f { cfg.$f = v; })* };
    }
    set!(
        users,
        items,
        clusters,
        interests_per_user,
        interest_skew,
        item_exponent,
        alpha,
        gamma,
        epsilon,
        min_len,
        max_len,
        length_exponent
    );
    if let Some(t) = a.seq_len {
        cfg.min_len = t;
        cfg.max_len = t;
    }
    let inputs: Vec<&Path> = config.into_iter().collect();
    longtail_data::outputs::check_synth_outputs(out, &inputs)?;
    let data = generate(&cfg, seed)?;
    let clusters = longtail_data::outputs::write_synth(&data, out, &inputs)?;
    println!(
        "wrote {} interactions of {} users over {} items ({} clusters) to {} and {}",
        data.interactions.len(),
        cfg.users,
        cfg.items,
        cfg.clusters,
        out.display(),
        clusters.display()
    );
    Ok(())
}

fn bench(
    registry: &Registry,
    model: &str,
    device: &str,
    steps: usize,
    batch_size: usize,
) -> Result<()> {
    registry.check(model)?;
    if steps == 0 || batch_size == 0 {
        bail!("--steps and --batch-size must be at least 1");
    }
    let device = device.parse::<DeviceSpec>()?.resolve()?;
    let cfg = ExperimentConfig::demo();
    let synth = match &cfg.data {
        longtail_train::DataSource::Synth { synth } => synth.clone(),
        _ => SynthConfig::default(),
    };
    let t = Instant::now();
    let data = generate(&synth, 1)?;
    let synth_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ds = build_ctr_dataset(&data.interactions, "bench", &cfg.samples, 1)?;
    let prep_s = t.elapsed().as_secs_f64();
    let prep_rows = ds.train.len() + ds.valid.len() + ds.test.len();

    let shape = longtail_train::bench::step::StepShape {
        batch_size,
        hist_len: cfg.samples.max_hist_len,
        ..Default::default()
    };
    let t = Instant::now();
    let mut b = longtail_train::bench::step::StepBench::new(registry, model, &shape, device, 1)?;
    let setup_s = t.elapsed().as_secs_f64();
    b.time(10)?;
    let (step_ms, final_loss) = b.time(steps)?;
    let h2d = Instant::now();
    for h in &b.hosts {
        let _ = DeviceBatch::from_host(h, device)?;
    }
    let h2d_s = h2d.elapsed().as_secs_f64();
    let rt = runtime::info();
    let report = serde_json::json!({
        "model": model,
        "task": format!("{:?}", b.task).to_lowercase(),
        "device": longtail_core::device::device_name(device),
        "batch_size": batch_size,
        "steps": steps,
        "train_samples_per_s": batch_size as f64 * 1e3 / step_ms,
        "train_step_ms": step_ms,
        "final_loss": final_loss,
        "setup_s": setup_s,
        "synth_interactions_per_s": data.interactions.len() as f64 / synth_s,
        "prepare_rows_per_s": prep_rows as f64 / prep_s,
        "prepare_rows": prep_rows,
        "host_to_device_batches_per_s": b.hosts.len() as f64 / h2d_s.max(1e-12),
        "threads": rt.threads,
        "tch": rt.tch,
        "libtorch": rt.libtorch,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn doctor() -> Result<()> {
    let rt = runtime::info();
    println!("longtail {}", env!("CARGO_PKG_VERSION"));
    println!("tch: {}", rt.tch);
    match (&rt.libtorch, &rt.libtorch_path) {
        (Some(v), Some(p)) => println!("libtorch: {v} at {}", p.display()),
        (None, Some(p)) => println!(
            "libtorch: version unknown (no version.py) at {}",
            p.display()
        ),
        _ => println!("libtorch: loaded, location unknown"),
    }
    println!("libtorch_cuda loaded: {}", rt.cuda_linked);
    println!("cuda available: {}", rt.cuda_available);
    println!("cuda devices: {}", rt.cuda_devices);
    if let Some(c) = &rt.cuda_version {
        println!("torch built for cuda: {c}");
    }
    println!("cudnn available: {}", rt.cudnn_available);
    println!("cpu threads: {}", rt.threads);
    if rt.cuda_available {
        match std::process::Command::new("nvidia-smi")
            .args([
                "--query-gpu=index,name,memory.total,driver_version",
                "--format=csv,noheader",
            ])
            .output()
        {
            Ok(o) if o.status.success() => {
                for line in String::from_utf8_lossy(&o.stdout).lines() {
                    println!("gpu: {line}");
                }
            }
            _ => println!("gpu: (nvidia-smi not available to name it)"),
        }
    }
    if let Some(v) = &rt.libtorch {
        if !v.starts_with("2.11.") {
            bail!("libtorch {v} is loaded but longtail is built with tch 0.24.0 for libtorch 2.11.0: run scripts/setup-libtorch, or point LD_LIBRARY_PATH at a libtorch 2.11.0 lib folder");
        }
    }
    if !rt.cuda_linked {
        println!("note: libtorch_cuda is not loaded, so no GPU can be used by this binary (was it linked with --no-as-needed? see docs/install.md)");
    }
    Ok(())
}
