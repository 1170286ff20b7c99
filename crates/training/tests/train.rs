//! The training loop on a small fixture: same seed ⇒ same metrics.csv, interrupted and resumed ⇒ the
//! same numbers as uninterrupted, divergence stops the run and keeps its checkpoint, Q_ss learns, and candle's
//! ops train as the fast CPU path does.

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use ssinfogan_core::run_dir::{RunDir, RunId};
use ssinfogan_core::{ImageSpec, LatentSpec, RngStreams, SemiSupervisedCode};
use ssinfogan_datasets::dataset::content_hash;
use ssinfogan_datasets::{Dataset, DatasetName, LabelledSubset, Provenance, SourceKind, Split};
use ssinfogan_kernels::Ops;
use ssinfogan_losses::{ContinuousLoss, LossConfig};
use ssinfogan_networks::{initialise, LayerConfig, MnistDiscriminator, MnistGenerator};
use ssinfogan_training::{
    iteration_losses, train, AdamConfig, Networks, OptimiserConfig, ScheduleConfig, TrainError, TrainingRun,
};

/// 200 images in 10 classes; class k is a bright horizontal bar at rows 2k+4..2k+6, over faint noise.
fn fixture() -> Dataset {
    let make = |n: usize, offset: usize| {
        let mut images = Vec::with_capacity(n * 784);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let class = i % 10;
            for p in 0..784 {
                let row = p / 28;
                let bar = row >= 2 * class + 4 && row < 2 * class + 6;
                images.push(if bar { 0.9 } else { ((i + offset) * 7 + p) as f32 % 13.0 / 100.0 });
            }
            labels.push(class as u8);
        }
        Split { images, labels }
    };
    let (train, test) = (make(200, 0), make(50, 1000));
    let provenance = Provenance {
        label: "class".into(),
        dataset: DatasetName::Mnist,
        source: SourceKind::Local,
        origin: "bar fixture".into(),
        location: "fixture".into(),
        train_size: 200,
        test_size: 50,
        image: ImageSpec::MNIST,
        content_sha256: content_hash(&train, &test),
        full_dataset: false,
        note: None,
    };
    Dataset::new(ImageSpec::MNIST, 10, train, test, provenance).unwrap()
}

fn latent() -> LatentSpec {
    LatentSpec {
        semi_supervised: vec![SemiSupervisedCode { name: "digit".into(), size: 10, label: "class".into() }],
        unsupervised_categorical: vec![],
        continuous: 2,
        noise: 62,
    }
}

fn networks(seed: u64) -> Networks {
    let config = LayerConfig { leaky_relu_slope: 0.01, batch_norm_eps: 1e-5, batch_norm_momentum: 0.1, init_std: 0.02 };
    let (g_vars, d_vars) = (VarMap::new(), VarMap::new());
    let g =
        MnistGenerator::new(&latent(), &config, VarBuilder::from_varmap(&g_vars, DType::F32, &Device::Cpu)).unwrap();
    let d = MnistDiscriminator::new(&latent(), 2, &config, VarBuilder::from_varmap(&d_vars, DType::F32, &Device::Cpu))
        .unwrap();
    let streams = RngStreams::new(seed);
    initialise(&g_vars, 0.02, &mut streams.stream("init-generator")).unwrap();
    initialise(&d_vars, 0.02, &mut streams.stream("init-discriminator")).unwrap();
    Networks { generator: Box::new(g), discriminator: Box::new(d), generator_vars: g_vars, discriminator_vars: d_vars }
}

struct Setup {
    dataset: Dataset,
    subset: LabelledSubset,
    loss: LossConfig,
    optimiser: OptimiserConfig,
    schedule: ScheduleConfig,
}

fn setup(n_labelled: usize, epochs: usize, iterations: usize, batch_size: usize, d_lr: f64) -> Setup {
    let dataset = fixture();
    let subset = LabelledSubset::choose(
        &dataset.train.labels,
        10,
        n_labelled,
        false,
        &mut RngStreams::new(1).stream("labelled-subset"),
    )
    .unwrap();
    let adam = |lr| AdamConfig { learning_rate: lr, beta1: 0.5, beta2: 0.999, eps: 1e-8 };
    Setup {
        dataset,
        subset,
        loss: LossConfig { lambda_ss: 2.0, lambda_us: 0.8, continuous: ContinuousLoss::Mse, q_ss_on_fakes: false },
        optimiser: OptimiserConfig { discriminator: adam(d_lr), generator: adam(1e-3) },
        schedule: ScheduleConfig {
            batch_size,
            epochs,
            iterations_per_epoch: iterations,
            unlabelled_probability_growth: Some(0.1),
        },
    }
}

/// The run of `s` in `dir` with seed 1, its losses computed by `ops`.
fn training_run<'a>(
    s: &'a Setup,
    latent: &'a LatentSpec,
    run_dir: &'a RunDir,
    ops: Ops,
    inject_nan_at: Option<u64>,
) -> TrainingRun<'a> {
    TrainingRun {
        dataset: &s.dataset,
        subset: &s.subset,
        latent,
        loss: &s.loss,
        optimiser: &s.optimiser,
        schedule: &s.schedule,
        streams: RngStreams::new(1),
        run_dir,
        device: &Device::Cpu,
        ops,
        losses_every: 2,
        tensorboard: true,
        checkpoints: ssinfogan_training::CheckpointPolicy::default(),
        inject_nan_at,
        fault: None,
        lock: None,
        stop: None,
    }
}

fn run_in(dir: &Path, s: &Setup, inject_nan_at: Option<u64>) -> Result<RunDir, TrainError> {
    let run_dir = RunDir::new(
        dir,
        "fixture",
        &RunId { variant: "ss-infogan".into(), n_labelled: s.subset.labelled.len(), seed: 1 },
    );
    let latent = latent();
    let run = training_run(s, &latent, &run_dir, Ops::Fast, inject_nan_at);
    train(&run, &mut networks(1), None).map(|_| run_dir)
}

fn metric(run: &RunDir, epoch: usize, name: &str) -> f64 {
    let text = std::fs::read_to_string(run.metrics()).unwrap();
    text.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1] == epoch.to_string() && f[2] == name).then(|| f[3].parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {name} for epoch {epoch} in\n{text}"))
}

#[test]
fn same_seed_gives_byte_identical_metrics() {
    let s = setup(20, 2, 2, 8, 1e-4);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ra, rb) = (run_in(a.path(), &s, None).unwrap(), run_in(b.path(), &s, None).unwrap());
    let metrics = std::fs::read(ra.metrics()).unwrap();
    assert_eq!(metrics, std::fs::read(rb.metrics()).unwrap());
    assert_eq!(String::from_utf8(metrics).unwrap().lines().next(), Some("iteration,epoch,metric,value"));
}

/// `losses.csv` holds the mean of each loss over every `losses_every` iterations of an epoch and over the rest
/// at its end; the windows of an epoch average to what `metrics.csv` records for it.
#[test]
fn the_loss_log_averages_windows_of_iterations_to_the_epoch_s_means() {
    let s = setup(20, 2, 5, 8, 1e-4);
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(dir.path(), &s, None).unwrap();
    let text = std::fs::read_to_string(run.losses()).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let d_real: Vec<(&str, &str, f64)> =
        rows.iter().filter(|r| r[2] == "d_real").map(|r| (r[0], r[1], r[3].parse().unwrap())).collect();
    // Windows of 2, 2 and 1 iterations in each epoch of 5 (losses_every = 2).
    let at: Vec<(&str, &str)> = d_real.iter().map(|&(i, e, _)| (i, e)).collect();
    assert_eq!(at, [("2", "0"), ("4", "0"), ("5", "0"), ("7", "1"), ("9", "1"), ("10", "1")]);
    for epoch in 0..2 {
        let windows: Vec<f64> = d_real[3 * epoch..3 * epoch + 3].iter().map(|r| r.2).collect();
        let mean = (2.0 * windows[0] + 2.0 * windows[1] + windows[2]) / 5.0;
        let recorded = metric(&run, epoch, "d_real");
        assert!((mean - recorded).abs() <= 1e-12 * recorded.abs(), "epoch {epoch}: {mean} against {recorded}");
    }
    let names: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[2]).collect();
    for loss in ["d_real", "d_fake", "g_adv", "q_us", "q_ss_fake"] {
        assert!(names.contains(loss), "{loss} missing from\n{text}");
    }
}

#[test]
fn an_interrupted_run_resumes_to_the_same_numbers_and_divergence_keeps_the_checkpoint() {
    let s = setup(20, 3, 2, 8, 1e-4);
    let whole = tempfile::tempdir().unwrap();
    let whole = run_in(whole.path(), &s, None).unwrap();

    let cut = tempfile::tempdir().unwrap();
    // A NaN at iteration 5 (epoch 3) stops the run after two checkpointed epochs.
    let error = run_in(cut.path(), &s, Some(5)).unwrap_err();
    assert!(matches!(error, TrainError::Diverged { iteration: 5, .. }), "{error}");
    assert!(error.to_string().contains("training diverged at iteration 5: discriminator loss = NaN"), "{error}");
    let run_dir = RunDir::new(cut.path(), "fixture", &RunId { variant: "ss-infogan".into(), n_labelled: 20, seed: 1 });
    let summary = std::fs::read_to_string(run_dir.summary()).unwrap();
    assert!(summary.contains("\"status\": \"failed\""), "{summary}");
    assert_eq!(std::fs::read_to_string(run_dir.checkpoint().join("latest")).unwrap(), "epoch-0002");

    // Resume: the third epoch is trained again from the checkpoint.
    std::fs::remove_file(run_dir.summary()).unwrap();
    let resumed = run_in(cut.path(), &s, None).unwrap();
    assert_eq!(std::fs::read(resumed.metrics()).unwrap(), std::fs::read(whole.metrics()).unwrap());
    assert_eq!(std::fs::read(resumed.losses()).unwrap(), std::fs::read(whole.losses()).unwrap());
    assert!(std::fs::read_to_string(resumed.summary()).unwrap().contains("\"status\": \"completed\""));
}

/// The newest `keep_last` checkpoints stay, and the one where the monitored metric was best (the first such
/// epoch: later ties do not replace it), which `best.json` names and `choose` finds; the others are gone.
#[test]
fn checkpoints_keep_the_newest_k_and_the_best_by_the_monitored_metric() {
    use ssinfogan_training::checkpoint::{best, choose};
    use ssinfogan_training::{CheckpointPolicy, Mode};
    let s = setup(20, 6, 1, 8, 1e-4);
    for (keep_last, monitor, mode) in [(3, "g_adv", None), (1, "d_real", Some(Mode::Max))] {
        let dir = tempfile::tempdir().unwrap();
        let run_dir =
            RunDir::new(dir.path(), "fixture", &RunId { variant: "ss-infogan".into(), n_labelled: 20, seed: 1 });
        let latent = latent();
        let policy = CheckpointPolicy { keep_last, monitor: Some(monitor.into()), mode };
        let run = TrainingRun { checkpoints: policy, ..training_run(&s, &latent, &run_dir, Ops::Fast, None) };
        train(&run, &mut networks(1), None).unwrap();

        let values: Vec<f64> = (0..6).map(|epoch| metric(&run_dir, epoch, monitor)).collect();
        let better = |a: f64, b: f64| if mode == Some(Mode::Max) { a > b } else { a < b };
        let best_epoch = (1..6).fold(0, |b, e| if better(values[e], values[b]) { e } else { b }) + 1;
        let record = best(&run_dir.checkpoint()).unwrap().expect("no best.json");
        assert_eq!(record.checkpoint, format!("epoch-{best_epoch:04}"), "{monitor}: {values:?}");
        assert_eq!((record.epochs_done, record.metric.as_str()), (best_epoch, monitor));
        // serde_json's default float parsing may miss the last bit of what it wrote (its `float_roundtrip`
        // feature is off); the comparison of later epochs against it is unaffected at that precision.
        let value = values[best_epoch - 1];
        assert!((record.value - value).abs() <= 4.0 * f64::EPSILON * value.abs(), "{} against {value}", record.value);
        assert_eq!(record.mode, mode.unwrap_or(Mode::Min));

        let mut expected: Vec<String> = (7 - keep_last..=6).map(|e| format!("epoch-{e:04}")).collect();
        expected.push(record.checkpoint.clone());
        expected.sort();
        expected.dedup();
        let mut kept: Vec<String> = std::fs::read_dir(run_dir.checkpoint())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("epoch-"))
            .collect();
        kept.sort();
        assert_eq!(kept, expected, "keep_last = {keep_last}, best {}", record.checkpoint);

        let checkpoints = run_dir.checkpoint();
        assert_eq!(choose(&checkpoints, "best").unwrap(), checkpoints.join(&record.checkpoint));
        assert_eq!(choose(&checkpoints, "latest").unwrap(), checkpoints.join("epoch-0006"));
        let gone = (1..=6).map(|e| format!("epoch-{e:04}")).find(|n| !expected.contains(n)).unwrap();
        let error = choose(&checkpoints, &gone).unwrap_err().to_string();
        assert!(error.contains("not a complete checkpoint") && error.contains(&expected.join(", ")), "{error}");
        let error = choose(&checkpoints, "newest").unwrap_err().to_string();
        assert!(error.contains("use latest, best or one of the kept directories"), "{error}");
    }
}

#[test]
fn q_ss_learns_the_labelled_classes() {
    // All 200 images labelled, so every batch is labelled; a faster D makes the test short.
    let s = setup(200, 4, 5, 16, 1e-3);
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(dir.path(), &s, None).unwrap();
    let first = metric(&run, 0, "q_ss_real_accuracy");
    let last = metric(&run, 3, "q_ss_real_accuracy");
    // Chance is 0.1; the bars are easy, so Q_ss must be far above it after 20 iterations.
    assert!(last > 0.6 && last > first, "Q_ss accuracy {first} → {last}");
    assert!(metric(&run, 3, "q_ss_real") < metric(&run, 0, "q_ss_real"));
    assert_eq!(metric(&run, 3, "unlabelled_batches"), 0.0);
}

#[test]
fn candle_ops_train_as_the_fast_path_does_step_by_step() {
    // The `smoke` profile of experiments/mnist.toml on the fixture: batch 16, 2 epochs of 5 iterations, 20
    // labels, the official losses and optimisers; the same seed through both implementations of the step.
    let s = setup(20, 2, 5, 16, 1e-4);
    let dir = tempfile::tempdir().unwrap();
    let run_dir = RunDir::new(dir.path(), "fixture", &RunId { variant: "ss-infogan".into(), n_labelled: 20, seed: 1 });
    let latent = latent();
    let losses = |ops| iteration_losses(&training_run(&s, &latent, &run_dir, ops, None), &networks(1)).unwrap();
    let (fast, candle) = (losses(Ops::Fast), losses(Ops::Candle));
    assert_eq!(fast.len(), 10);
    assert!(!dir.path().join("fixture").exists(), "nothing is written");
    // The two paths round differently (other summation orders in the products, BatchNorm's sums in f64 or f32),
    // and Adam's first step turns rounding into whole steps: it moves each weight by about lr·g/(|g| + 3e-7),
    // so a gradient that is zero but for rounding (a bias before BatchNorm, a near-dead unit) moves its weight by
    // up to ±lr on either path with its own sign. After one step, a few hundredths of a percent of G's weights
    // differ by 2·lr (measured: 27,783 of fc2's 6.4M), and every loss that sees a fake differs by ~1e-3,
    // growing to at most 3.2e-2 over the ten iterations (q_ss_fake at iteration 8). Before that, the paths agree
    // to rounding: every loss of iteration 1 (D's first update included, in g_adv and q_ss_fake) and the losses
    // on real images of iteration 2, which see only that update; measured at most 6.6e-7.
    //
    // The tolerances, 3e-6 there and 0.1 after, are about 4.5× and 3× those measurements. Measured against the
    // fast path with one variable left out of its optimiser (the silent skip this project guards against), the
    // first catches D's q_ss_head bias (6e-6), its d_head bias (6e-5), its bn2 scale (3.3e-6) and first
    // convolution (6e-4); the second an untrained G fc2 weight (0.21), an untrained G (0.3) and any untrained D
    // layer (≥ 0.7). Gradients that differ more subtly are compared directly, variable by variable, in
    // ssinfogan-networks' tests.
    let rounding_only = |iteration: usize, name: &str| {
        iteration == 1 || (iteration == 2 && ["d_real", "q_ss_real", "q_ss_real_accuracy"].contains(&name))
    };
    let mut largest = [0f64; 2];
    for (iteration, (fast, candle)) in (1..).zip(fast.iter().zip(&candle)) {
        let names = |losses: &[(&'static str, f64)]| losses.iter().map(|l| l.0).collect::<Vec<_>>();
        assert_eq!(names(fast), names(candle), "iteration {iteration}");
        for (&(name, a), &(_, b)) in fast.iter().zip(candle) {
            let exact = rounding_only(iteration, name);
            let tolerance = if exact { 3e-6 } else { 0.1 };
            assert!((a - b).abs() <= tolerance, "{name} at iteration {iteration}: fast {a}, candle's ops {b}");
            let slot = &mut largest[usize::from(!exact)];
            *slot = slot.max((a - b).abs());
        }
    }
    // Not vacuous: two runs of one path would be identical; these are two implementations.
    assert!(largest[1] > 1e-4, "largest differences {largest:?}: did both runs take the same path?");
}
