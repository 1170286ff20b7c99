//! One evaluation through candle's own ops (what a CUDA device runs, here on the CPU) gives the metrics of the fast
//! path: the same generated images, classifier, Q head and Fréchet distance, to rounding.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use ssinfogan_core::{metric, LatentSpec, RngStreams, SemiSupervisedCode};
use ssinfogan_kernels::Ops;
use ssinfogan_metrics::{evaluate, train_classifier, ClassifierConfig, EvaluationInputs, RealFeatures};
use ssinfogan_networks::{initialise, LayerConfig, MnistDiscriminator, MnistGenerator};

fn latent() -> LatentSpec {
    LatentSpec {
        semi_supervised: vec![SemiSupervisedCode { name: "digit".into(), size: 10, label: "class".into() }],
        unsupervised_categorical: vec![],
        continuous: 2,
        noise: 62,
    }
}

/// Class k: a bright horizontal bar at rows 2k+4..2k+6 over faint texture.
fn bars(n: usize, offset: usize) -> (Tensor, Tensor) {
    let pixels: Vec<f32> = (0..n)
        .flat_map(|i| {
            (0..784).map(move |p| {
                let (class, row) = (i % 10, p / 28);
                if row >= 2 * class + 4 && row < 2 * class + 6 {
                    0.9
                } else {
                    ((i + offset) * 7 + p) as f32 % 13.0 / 100.0
                }
            })
        })
        .collect();
    let labels: Vec<u32> = (0..n).map(|i| (i % 10) as u32).collect();
    (
        Tensor::from_vec(pixels, (n, 1, 28, 28), &Device::Cpu).unwrap(),
        Tensor::from_vec(labels, n, &Device::Cpu).unwrap(),
    )
}

#[test]
fn candles_ops_give_the_metrics_of_the_fast_path() {
    let config = LayerConfig { leaky_relu_slope: 0.01, batch_norm_eps: 1e-5, batch_norm_momentum: 0.1, init_std: 0.02 };
    let (g_vars, d_vars) = (VarMap::new(), VarMap::new());
    let g =
        MnistGenerator::new(&latent(), &config, VarBuilder::from_varmap(&g_vars, DType::F32, &Device::Cpu)).unwrap();
    let d = MnistDiscriminator::new(&latent(), 2, &config, VarBuilder::from_varmap(&d_vars, DType::F32, &Device::Cpu))
        .unwrap();
    initialise(&g_vars, 0.02, &mut RngStreams::new(4).stream("g")).unwrap();
    initialise(&d_vars, 0.02, &mut RngStreams::new(4).stream("d")).unwrap();
    let (train_x, train_y) = bars(200, 0);
    let (test_x, test_y) = bars(100, 500);
    let streams = RngStreams::new(0);
    let (classifier, _) = train_classifier(
        &train_x,
        &train_y,
        10,
        &ClassifierConfig { epochs: 1, batch_size: 20, learning_rate: 1e-3 },
        &mut streams.stream("i"),
        &mut streams.stream("b"),
        &Device::Cpu,
        Ops::Fast,
    )
    .unwrap();

    let per_code = 20;
    let run = |ops: Ops| {
        let real_features = RealFeatures::new(&classifier, &test_x, ops).unwrap();
        let inputs = EvaluationInputs {
            generator: &g,
            discriminator: &d,
            classifier: &classifier,
            latent: &latent(),
            test_images: &test_x,
            test_labels: &test_y,
            real_features: &real_features,
            samples_per_code: per_code,
            drawn_per_code: per_code,
            official: true,
            device: &Device::Cpu,
            ops,
        };
        evaluate(&inputs, &mut ChaCha8Rng::seed_from_u64(5)).unwrap()
    };
    let (fast, candle) = (run(Ops::Fast), run(Ops::Candle));

    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for (i, (a, b)) in flat(&fast.samples).iter().zip(flat(&candle.samples)).enumerate() {
        assert!((a - b).abs() <= 1e-5, "generated pixel {i}: fast {a}, candle's ops {b}");
    }
    assert_eq!(fast.sample_codes, candle.sample_codes);
    let names = |e: &ssinfogan_metrics::Evaluation| e.metrics.iter().map(|(n, _)| *n).collect::<Vec<_>>();
    assert_eq!(names(&fast), names(&candle));
    assert!(names(&fast).contains(&metric::C_ERR_OFFICIAL), "the official metrics were evaluated");
    for ((name, a), (_, b)) in fast.metrics.iter().zip(&candle.metrics) {
        assert!(a.is_finite(), "{name}: {a}");
        // Every metric is a smooth function of the networks' outputs or a count of argmax decisions over 200
        // generated and 100 real images; the two paths differ by rounding (1e-6 of a pixel), far from a decision.
        assert!((a - b).abs() <= 1e-4 * (1.0 + a.abs()), "{name}: fast {a}, candle's ops {b}");
    }
}
