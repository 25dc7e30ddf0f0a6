//! `portcullis bench forest`: the Isolation Forest on one core: how long growing a forest takes,
//! and how many rows a second it scores, a block at a time (as the engine scores a batch) beside
//! one row at a time (the same forest with blocking off), in one run.

use std::time::{Duration, Instant};

use portcullis_engine::anomaly::{FeatureMatrix, ForestParams, IsolationForest};
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone)]
pub struct ForestBenchOptions {
    /// Rows of synthetic data: the forests are grown on them and they are scored.
    pub rows: usize,
    /// Features per row.
    pub features: usize,
    /// Forests grown to time training.
    pub fits: usize,
    /// Passes over the rows to time scoring.
    pub passes: usize,
    pub seed: u64,
}

#[derive(Debug, Clone)]
pub struct ForestBenchReport {
    pub trees: usize,
    pub sample_size: usize,
    /// Milliseconds to grow one forest: median, slowest.
    pub fit_ms_median: f64,
    pub fit_ms_max: f64,
    /// Rows scored per second on this thread.
    pub block_scores_per_s: f64,
    pub row_scores_per_s: f64,
}

impl std::fmt::Display for ForestBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "forest: {} trees, subsample {}",
            self.trees, self.sample_size
        )?;
        writeln!(
            f,
            "training:  median {:.2} ms, slowest {:.2} ms per forest",
            self.fit_ms_median, self.fit_ms_max
        )?;
        writeln!(
            f,
            "scoring, one core: {:.0} rows/s a block at a time, {:.0} rows/s one row at a time ({:.2}×)",
            self.block_scores_per_s,
            self.row_scores_per_s,
            self.block_scores_per_s / self.row_scores_per_s
        )
    }
}

pub fn run_forest_bench(opts: &ForestBenchOptions) -> anyhow::Result<ForestBenchReport> {
    anyhow::ensure!(
        opts.rows >= 2 && opts.features >= 1,
        "need at least 2 rows and 1 feature"
    );
    let data = synthetic(opts);
    let params = ForestParams {
        seed: opts.seed,
        ..ForestParams::default()
    };
    // Training: distinct seeds so that no two fits are the same work.
    let mut fits = Vec::with_capacity(opts.fits.max(1));
    let mut forest = IsolationForest::fit(params, &data)?;
    for i in 0..opts.fits.max(1) {
        let started = Instant::now();
        forest = IsolationForest::fit(
            ForestParams {
                seed: opts.seed.wrapping_add(i as u64),
                ..params
            },
            &data,
        )?;
        fits.push(started.elapsed());
    }
    fits.sort();

    let mut checksum = 0.0;
    let started = Instant::now();
    for _ in 0..opts.passes.max(1) {
        checksum += forest.score_all(&data)?.iter().sum::<f64>();
    }
    let block = started.elapsed();
    let started = Instant::now();
    for _ in 0..opts.passes.max(1) {
        for row in data.iter() {
            checksum -= forest.score(row)?;
        }
    }
    let single = started.elapsed();
    // Both ways score the same rows the same, so the sums cancel.
    anyhow::ensure!(
        checksum.abs() < 1e-6 * data.rows() as f64,
        "block and row scores differ"
    );

    let scored = (data.rows() * opts.passes.max(1)) as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(ForestBenchReport {
        trees: params.trees,
        sample_size: forest.sample_size(),
        fit_ms_median: ms(fits[fits.len() / 2]),
        fit_ms_max: ms(*fits.last().unwrap()),
        block_scores_per_s: scored / block.as_secs_f64(),
        row_scores_per_s: scored / single.as_secs_f64(),
    })
}

/// Rows of independent features, each uniform on its own scale, with one row in a hundred pushed
/// far out on one feature: the shape of event features (counts, hours, rates) more than of a
/// Gaussian, and enough outliers that trees are not all the same shape.
fn synthetic(opts: &ForestBenchOptions) -> FeatureMatrix {
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let scales: Vec<f64> = (0..opts.features)
        .map(|i| 10f64.powi((i % 4) as i32))
        .collect();
    let mut data = FeatureMatrix::new(opts.features).expect("at least one feature");
    let mut row = vec![0.0; opts.features];
    for _ in 0..opts.rows {
        for (v, scale) in row.iter_mut().zip(&scales) {
            *v = rng.random::<f64>() * scale;
        }
        if rng.random_ratio(1, 100) {
            let f = rng.random_range(0..opts.features);
            row[f] += scales[f] * 20.0;
        }
        data.push(&row).expect("finite");
    }
    data
}
