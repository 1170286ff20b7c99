//! Shapes, ranges and connectivity of the 32×32 colour networks, their selection through `NetworkConfig`, and the
//! fast path against candle's own ops (what a CUDA device runs).

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use ssinfogan_core::{ImageSpec, LatentSpec, RngStreams, SemiSupervisedCode};
use ssinfogan_kernels::{backward, GradientSums, Ops, Pass};
use ssinfogan_networks::{initialise, LayerConfig, NetworkConfig};

/// InfoGAN's SVHN latent: a 10-way semi-supervised code, three 10-way unsupervised codes, 4 continuous, 124 noise.
fn latent() -> LatentSpec {
    LatentSpec {
        semi_supervised: vec![SemiSupervisedCode { name: "digit".into(), size: 10, label: "class".into() }],
        unsupervised_categorical: vec![10, 10, 10],
        continuous: 4,
        noise: 124,
    }
}

fn colour() -> NetworkConfig {
    NetworkConfig::Colour32(LayerConfig {
        leaky_relu_slope: 0.01,
        batch_norm_eps: 1e-5,
        batch_norm_momentum: 0.1,
        init_std: 0.02,
    })
}

#[test]
fn the_toml_kind_selects_the_family_and_its_image() {
    let config: NetworkConfig = toml::from_str(
        "kind = \"colour-32\"\nleaky_relu_slope = 0.01\nbatch_norm_eps = 1e-5\nbatch_norm_momentum = 0.1\ninit_std = 0.02",
    )
    .unwrap();
    assert_eq!(config, colour());
    assert_eq!(config.image(), ImageSpec::COLOUR_32);
    assert_eq!(config.kind(), "colour-32");
    assert_eq!(toml::to_string(&config).unwrap().lines().next().unwrap(), "kind = \"colour-32\"");
    let unknown = toml::from_str::<NetworkConfig>("kind = \"svhn\"\nleaky_relu_slope = 0.01");
    assert!(unknown.unwrap_err().to_string().contains("colour-32"));
}

#[test]
fn generator_maps_the_latent_to_32x32_colour_images_in_the_unit_interval() {
    let vars = VarMap::new();
    let g = colour().generator(&latent(), VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu)).unwrap();
    initialise(&vars, 0.02, &mut RngStreams::new(1).stream("init")).unwrap();
    let codes = latent().sample(3, &mut RngStreams::new(1).stream("latent"));
    let z = codes.generator_input(&latent(), &Device::Cpu).unwrap();
    assert_eq!(z.dims(), &[3, 10 + 30 + 4 + 124]);
    for pass in [Pass::training(Ops::Fast), Pass::inference(Ops::Fast)] {
        let images = g.generate(&z, &pass).unwrap();
        assert_eq!(images.dims(), &[3, 3, 32, 32]);
        let v: Vec<f32> = images.flatten_all().unwrap().to_vec1().unwrap();
        assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
        // Not a constant image: the three channels differ somewhere.
        assert!(v[..1024].iter().zip(&v[1024..2048]).any(|(r, g)| (r - g).abs() > 1e-6));
    }
    // InfoGAN's table: 2·2·448 after the first layer, then 256, 128, 64 and 3 channels.
    let data = vars.data().lock().unwrap();
    assert_eq!(data["fc.weight"].dims(), &[1792, 168]);
    assert_eq!(data["deconv1.weight"].dims(), &[448, 256, 4, 4]);
    assert_eq!(data["deconv4.weight"].dims(), &[64, 3, 4, 4]);
}

#[test]
fn discriminator_heads_have_the_latent_widths_and_every_parameter_gets_a_gradient() {
    let vars = VarMap::new();
    let d = colour().discriminator(&latent(), 34, VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu)).unwrap();
    initialise(&vars, 0.02, &mut RngStreams::new(2).stream("init")).unwrap();
    // Four different images: identical ones would make every BatchNorm output of the batch zero.
    let pixels: Vec<f32> = (0..4 * 3 * 32 * 32).map(|i: usize| ((i * i + 7 * i) % 251) as f32 / 250.0).collect();
    let images = Tensor::from_vec(pixels, (4, 3, 32, 32), &Device::Cpu).unwrap();
    let out = d.discriminate(&images, &Pass::training(Ops::Fast)).unwrap();
    assert_eq!(out.d_logits.dims(), &[4, 1]);
    assert_eq!(out.q_ss_logits.dims(), &[4, 10]);
    let q_us = out.q_us.unwrap();
    assert_eq!(q_us.dims(), &[4, 34]);
    let total = (out.d_logits.sum_all().unwrap() + out.q_ss_logits.sqr().unwrap().sum_all().unwrap()).unwrap();
    let total = (total + q_us.sqr().unwrap().sum_all().unwrap()).unwrap();
    let grads = total.backward().unwrap();
    for (name, var) in vars.data().lock().unwrap().iter() {
        // Running statistics are buffers, not parameters.
        if name.ends_with("running_mean") || name.ends_with("running_var") {
            continue;
        }
        let grad = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{name} gets no gradient"));
        let norm: f32 = grad.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!(norm > 0.0, "{name} has a zero gradient");
    }
    let no_us = colour()
        .discriminator(&latent(), 0, VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu))
        .unwrap();
    assert!(no_us.discriminate(&images, &Pass::inference(Ops::Fast)).unwrap().q_us.is_none());
}

/// Four different colour images in [0, 1]: identical ones would make every BatchNorm output of the batch zero.
fn colour_images(batch: usize) -> Tensor {
    let pixels: Vec<f32> = (0..batch * 3 * 32 * 32).map(|i: usize| ((i * i + 7 * i) % 251) as f32 / 250.0).collect();
    Tensor::from_vec(pixels, (batch, 3, 32, 32), &Device::Cpu).unwrap()
}

#[test]
fn candles_ops_give_the_outputs_and_every_gradient_of_the_fast_path() {
    // The colour-32 networks through candle's own ops (the CUDA path, on the CPU) against the fast kernels with
    // their gradients summed in place: every output of G and D, and a D-step-like loss's gradient for every
    // parameter of both.
    let (g_vars, d_vars) = (VarMap::new(), VarMap::new());
    let g = colour().generator(&latent(), VarBuilder::from_varmap(&g_vars, DType::F32, &Device::Cpu)).unwrap();
    let d = colour().discriminator(&latent(), 34, VarBuilder::from_varmap(&d_vars, DType::F32, &Device::Cpu)).unwrap();
    initialise(&g_vars, 0.02, &mut RngStreams::new(3).stream("g")).unwrap();
    initialise(&d_vars, 0.02, &mut RngStreams::new(3).stream("d")).unwrap();
    let codes = latent().sample(4, &mut RngStreams::new(3).stream("latent"));
    let z = codes.generator_input(&latent(), &Device::Cpu).unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let close = |what: &str, ours: &[f32], theirs: &[f32], tolerance: f32| {
        assert_eq!(ours.len(), theirs.len(), "{what}");
        let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
            assert!((a - b).abs() <= tolerance * (1.0 + scale), "{what}[{i}]: fast {a}, candle's ops {b}");
        }
    };

    for pass in [Pass::training as fn(Ops) -> Pass, Pass::inference] {
        let (fast, candle) = (pass(Ops::Fast), pass(Ops::Candle));
        close("G's images", &flat(&g.generate(&z, &fast).unwrap()), &flat(&g.generate(&z, &candle).unwrap()), 1e-5);
        let (ours, theirs) =
            (d.discriminate(&colour_images(4), &fast).unwrap(), d.discriminate(&colour_images(4), &candle).unwrap());
        close("D's logits", &flat(&ours.d_logits), &flat(&theirs.d_logits), 1e-4);
        close("Q_ss's logits", &flat(&ours.q_ss_logits), &flat(&theirs.q_ss_logits), 1e-4);
        close("Q_us's outputs", &flat(&ours.q_us.unwrap()), &flat(&theirs.q_us.unwrap()), 1e-4);
    }

    let d_step_like_loss = |pass: &Pass| {
        let fake = g.generate(&z, pass).unwrap();
        let (on_real, on_fake) =
            (d.discriminate(&colour_images(4), pass).unwrap(), d.discriminate(&fake, pass).unwrap());
        [on_real.d_logits, on_real.q_ss_logits.sqr().unwrap(), on_fake.d_logits, on_fake.q_us.unwrap()]
            .iter()
            .map(|t| t.sum_all().unwrap())
            .reduce(|a, b| (a + b).unwrap())
            .unwrap()
    };
    let candles = d_step_like_loss(&Pass::training(Ops::Candle)).backward().unwrap();
    let sums = Arc::new(GradientSums::default());
    let fast = backward(&d_step_like_loss(&Pass::training(Ops::Fast).summing_into(&sums)), &sums).unwrap();
    let mut compared = 0;
    for (name, var) in g_vars.data().lock().unwrap().iter().chain(d_vars.data().lock().unwrap().iter()) {
        if name.contains("running") {
            continue;
        }
        let theirs = candles.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient from candle"));
        let ours = fast.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient from the fast path"));
        // The same bound as the MNIST networks' comparison: a wrong or missing term is far above it.
        close(name, &flat(ours), &flat(theirs), 1e-3);
        compared += 1;
    }
    let trainable = |vars: &VarMap| vars.data().lock().unwrap().keys().filter(|n| !n.contains("running")).count();
    assert_eq!(compared, trainable(&g_vars) + trainable(&d_vars), "every parameter of G and D has a gradient");
    assert!(compared > 30, "G and D have {compared} parameters: the networks were not built");
}
