//! Criterion benchmarks of the host pipeline: synthetic generation, CTR sample preparation,
//! batching, and exact AUC / GAUC. Training throughput is measured by `longtail bench` (JSON).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use longtail_data::{build_ctr_dataset, generate, BatchIter, CtrConfig, SynthConfig};

fn pipeline(c: &mut Criterion) {
    let synth = SynthConfig {
        users: 4000,
        ..SynthConfig::default()
    };
    let data = generate(&synth, 1).expect("synthetic data");
    let cfg = CtrConfig::default();
    let ds = build_ctr_dataset(&data.interactions, "bench", &cfg, 1).expect("ctr dataset");

    let mut g = c.benchmark_group("data");
    g.throughput(Throughput::Elements(data.interactions.len() as u64));
    g.bench_function("synth_generate_4k_users", |b| {
        b.iter(|| generate(black_box(&synth), 1).unwrap())
    });
    g.bench_function("build_ctr_dataset", |b| {
        b.iter(|| build_ctr_dataset(black_box(&data.interactions), "bench", &cfg, 1).unwrap())
    });
    g.throughput(Throughput::Elements(ds.train.len() as u64));
    g.bench_function("batch_train_split_256", |b| {
        b.iter(|| {
            let it = BatchIter::try_new(
                &ds.train,
                &ds.sequences,
                256,
                cfg.max_hist_len,
                Some(3),
                None,
            )
            .unwrap();
            it.map(|h| h.hist_ids.len()).sum::<usize>()
        })
    });
    g.finish();

    let n = 1_000_000usize;
    let scores: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let labels: Vec<f32> = (0..n)
        .map(|i| ((i * 104_729) % 3 == 0) as u8 as f32)
        .collect();
    let users: Vec<u32> = (0..n).map(|i| (i % 100_000) as u32).collect();
    let mut g = c.benchmark_group("eval");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("auc_1m", |b| {
        b.iter(|| longtail_eval::auc(black_box(&scores), &labels).unwrap())
    });
    g.bench_function("gauc_1m_100k_users", |b| {
        b.iter(|| longtail_eval::gauc(black_box(&users), &scores, &labels).unwrap())
    });
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
