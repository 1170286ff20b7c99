//! Shapes of every output of the MNIST networks, and the official initialisation.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use std::sync::Arc;

use ssinfogan_core::{LatentSpec, RngStreams, SemiSupervisedCode};
use ssinfogan_kernels::{backward, Discriminator, Generator, GradientSums, Ops, Pass};
use ssinfogan_networks::{initialise, LayerConfig, MnistDiscriminator, MnistGenerator};

fn latent() -> LatentSpec {
    LatentSpec {
        semi_supervised: vec![SemiSupervisedCode { name: "digit".into(), size: 10, label: "class".into() }],
        unsupervised_categorical: vec![],
        continuous: 2,
        noise: 62,
    }
}

fn config() -> LayerConfig {
    LayerConfig { leaky_relu_slope: 0.01, batch_norm_eps: 1e-5, batch_norm_momentum: 0.1, init_std: 0.02 }
}

fn values(varmap: &VarMap, name: &str) -> Vec<f32> {
    varmap.data().lock().unwrap()[name].as_tensor().flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn generator_maps_74_inputs_to_28x28_images_in_the_unit_interval() {
    let vars = VarMap::new();
    let g =
        MnistGenerator::new(&latent(), &config(), VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu)).unwrap();
    initialise(&vars, 0.02, &mut RngStreams::new(1).stream("init")).unwrap();
    let codes = latent().sample(3, &mut RngStreams::new(1).stream("latent"));
    let z = codes.generator_input(&latent(), &Device::Cpu).unwrap();
    assert_eq!(z.dims(), &[3, 74]);
    for pass in [Pass::training(Ops::Fast), Pass::inference(Ops::Fast)] {
        let images = g.generate(&z, &pass).unwrap();
        assert_eq!(images.dims(), &[3, 1, 28, 28]);
        let v: Vec<f32> = images.flatten_all().unwrap().to_vec1().unwrap();
        assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
    }
}

#[test]
fn discriminator_heads_have_the_latent_widths() {
    let vars = VarMap::new();
    let d = MnistDiscriminator::new(&latent(), 4, &config(), VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu))
        .unwrap();
    initialise(&vars, 0.02, &mut RngStreams::new(1).stream("init")).unwrap();
    let images = Tensor::zeros((5, 1, 28, 28), DType::F32, &Device::Cpu).unwrap();
    let out = d.discriminate(&images, &Pass::training(Ops::Fast)).unwrap();
    assert_eq!(out.d_logits.dims(), &[5, 1]);
    assert_eq!(out.q_ss_logits.dims(), &[5, 10]);
    assert_eq!(out.q_us.unwrap().dims(), &[5, 4]);
    let no_us = MnistDiscriminator::new(
        &latent(),
        0,
        &config(),
        VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu),
    )
    .unwrap();
    assert!(no_us.discriminate(&images, &Pass::inference(Ops::Fast)).unwrap().q_us.is_none());
}

#[test]
fn initialisation_is_the_official_one_and_a_function_of_the_seed() {
    let build = |seed| {
        let vars = VarMap::new();
        MnistDiscriminator::new(&latent(), 2, &config(), VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu))
            .unwrap();
        initialise(&vars, 0.02, &mut RngStreams::new(seed).stream("init")).unwrap();
        vars
    };
    let vars = build(7);
    let fc = values(&vars, "fc.weight"); // 6272 × 1024 draws of N(0, 0.02)
    let mean = fc.iter().sum::<f32>() / fc.len() as f32;
    let std = (fc.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / fc.len() as f32).sqrt();
    assert!(mean.abs() < 1e-4 && (std - 0.02).abs() < 1e-4, "mean {mean}, std {std}");
    let scale = values(&vars, "bn_fc.weight"); // N(1, 0.02)
    let scale_mean = scale.iter().sum::<f32>() / scale.len() as f32;
    assert!((scale_mean - 1.0).abs() < 0.005, "{scale_mean}");
    assert!(values(&vars, "fc.bias").iter().all(|&b| b == 0.0));
    assert!(values(&vars, "bn_fc.running_var").iter().all(|&v| v == 1.0));
    assert_eq!(values(&build(7), "conv1.weight"), values(&vars, "conv1.weight"));
    assert_ne!(values(&build(8), "conv1.weight"), values(&vars, "conv1.weight"));
}

/// G and D (two continuous codes) initialised from `seed`, with their variables, and a latent batch of `batch`.
fn initialised_networks(seed: u64, batch: usize) -> (VarMap, MnistGenerator, VarMap, MnistDiscriminator, Tensor) {
    let (g_vars, d_vars) = (VarMap::new(), VarMap::new());
    let g =
        MnistGenerator::new(&latent(), &config(), VarBuilder::from_varmap(&g_vars, DType::F32, &Device::Cpu)).unwrap();
    let d =
        MnistDiscriminator::new(&latent(), 2, &config(), VarBuilder::from_varmap(&d_vars, DType::F32, &Device::Cpu))
            .unwrap();
    initialise(&g_vars, 0.02, &mut RngStreams::new(seed).stream("g")).unwrap();
    initialise(&d_vars, 0.02, &mut RngStreams::new(seed).stream("d")).unwrap();
    let z =
        latent().sample(batch, &mut RngStreams::new(seed).stream("latent")).generator_input(&latent(), &Device::Cpu);
    (g_vars, g, d_vars, d, z.unwrap())
}

#[test]
fn a_frozen_discriminator_passes_the_same_gradients_to_the_generator_and_gets_none_itself() {
    let (g_vars, g, d_vars, d, z) = initialised_networks(1, 4);
    // A G-step-like loss through every head of D.
    let gradients = |frozen: bool| {
        let fake = g.generate(&z, &Pass::training(Ops::Fast)).unwrap();
        let through_d = if frozen { Pass::training(Ops::Fast).frozen() } else { Pass::training(Ops::Fast) };
        let out = d.discriminate(&fake, &through_d).unwrap();
        let loss = (out.d_logits.sum_all().unwrap() + out.q_ss_logits.sqr().unwrap().sum_all().unwrap()).unwrap();
        (loss + out.q_us.unwrap().sum_all().unwrap()).unwrap().backward().unwrap()
    };
    // Frozen first: the pass after it, which is not, gets D's gradients (nothing of the frozen pass lingers).
    let (frozen, free) = (gradients(true), gradients(false));
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let mut compared = 0;
    for (name, var) in g_vars.data().lock().unwrap().iter() {
        if let Some(free_grad) = free.get(var.as_tensor()) {
            assert_eq!(flat(free_grad), flat(frozen.get(var.as_tensor()).unwrap()), "G's {name}");
            compared += 1;
        }
    }
    assert_eq!(compared, 14, "every weight, bias, BatchNorm scale and shift of G has a gradient");
    for (name, var) in d_vars.data().lock().unwrap().iter() {
        assert!(frozen.get(var.as_tensor()).is_none(), "D's {name} got a gradient while frozen");
        if !name.contains("running") {
            assert!(free.get(var.as_tensor()).is_some(), "D's {name} got no gradient while not frozen");
        }
    }
}

/// Three distinct images in [0, 1].
fn real_images() -> Tensor {
    let real = Tensor::arange(0f32, 3.0 * 784.0, &Device::Cpu).unwrap().reshape((3, 1, 28, 28)).unwrap();
    (real / 2352.0).unwrap().sin().unwrap().affine(0.5, 0.5).unwrap()
}

/// A loss of the D step's shape: D on real images and on G's fakes (whose graph is kept, so G's parameters get
/// gradients too), through every head.
fn d_step_like_loss(g: &MnistGenerator, d: &MnistDiscriminator, z: &Tensor, pass: &Pass) -> Tensor {
    let fake = g.generate(z, pass).unwrap();
    let (on_real, on_fake) = (d.discriminate(&real_images(), pass).unwrap(), d.discriminate(&fake, pass).unwrap());
    [on_real.d_logits, on_real.q_ss_logits.sqr().unwrap(), on_fake.d_logits, on_fake.q_us.unwrap()]
        .iter()
        .map(|t| t.sum_all().unwrap())
        .reduce(|a, b| (a + b).unwrap())
        .unwrap()
}

#[test]
fn parameter_gradients_summed_in_place_equal_candles_backward_pass() {
    // A D-step-like loss: D on two batches, so each of its parameters gets two gradients to sum; and G's
    // parameters, reached through the second batch (the fakes). The same forward pass twice (training-mode
    // BatchNorm normalises with the batch's statistics, so the second gives the same values): once with the
    // gradients to candle's backward pass, once summed in place.
    let (g_vars, g, d_vars, d, z) = initialised_networks(2, 3);
    let d_step_loss = |pass: &Pass| d_step_like_loss(&g, &d, &z, pass);
    let candles = d_step_loss(&Pass::training(Ops::Fast)).backward().unwrap();
    let sums = Arc::new(GradientSums::default());
    let loss = d_step_loss(&Pass::training(Ops::Fast).summing_into(&sums));
    let summed = backward(&loss, &sums).unwrap();
    assert!(sums.is_empty(), "the sums are handed over to the gradient store");
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let mut compared = 0;
    for (name, var) in g_vars.data().lock().unwrap().iter().chain(d_vars.data().lock().unwrap().iter()) {
        let (Some(theirs), ours) = (candles.get(var.as_tensor()), summed.get(var.as_tensor())) else {
            assert!(summed.get(var.as_tensor()).is_none(), "{name}: a gradient candle's pass does not have");
            continue;
        };
        let ours = ours.unwrap_or_else(|| panic!("{name}: no gradient"));
        assert_eq!(ours.shape(), theirs.shape(), "{name}");
        let (ours, theirs) = (flat(ours), flat(theirs));
        let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!((a - b).abs() <= 1e-5 * (1.0 + scale), "{name}[{i}]: {a} vs {b}");
        }
        compared += 1;
    }
    let trainable = |vars: &VarMap| vars.data().lock().unwrap().keys().filter(|n| !n.contains("running")).count();
    assert_eq!(compared, trainable(&g_vars) + trainable(&d_vars), "every parameter of G and D has a gradient");
}

#[test]
fn candles_ops_give_every_parameter_the_gradient_of_the_fast_path() {
    // The path a CUDA device runs, on the CPU: the D-step-like loss through candle's own ops, against the fast
    // kernels with their gradients summed in place, for every parameter of G and D.
    let (g_vars, g, d_vars, d, z) = initialised_networks(3, 4);
    let candles = d_step_like_loss(&g, &d, &z, &Pass::training(Ops::Candle)).backward().unwrap();
    let sums = Arc::new(GradientSums::default());
    let loss = d_step_like_loss(&g, &d, &z, &Pass::training(Ops::Fast).summing_into(&sums));
    let fast = backward(&loss, &sums).unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    // Measured at most 1.3e-4 of (1 + the tensor's largest gradient), in the bias of D's second convolution,
    // whose gradient is zero but for rounding (BatchNorm follows it); D's first bias, summed over 50,000 terms,
    // differs by 7.6e-5 of its scale. A wrong or missing term of a gradient is far above 1e-3.
    let mut compared = 0;
    for (name, var) in g_vars.data().lock().unwrap().iter().chain(d_vars.data().lock().unwrap().iter()) {
        if name.contains("running") {
            continue;
        }
        let theirs = flat(candles.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient from candle")));
        let ours = flat(fast.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient from the fast path")));
        let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!((a - b).abs() <= 1e-3 * (1.0 + scale), "{name}[{i}]: fast {a}, candle's ops {b}");
        }
        compared += 1;
    }
    assert_eq!(compared, 34, "every weight, bias, BatchNorm scale and shift of G (14) and D with Q_us (20)");
}
