//! Shapes of every output of the MNIST networks, and the official initialisation.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use ssinfogan_core::{Discriminator, Generator, LatentSpec, RngStreams, SemiSupervisedCode};
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
    for train in [true, false] {
        let images = g.generate(&z, train).unwrap();
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
    let out = d.discriminate(&images, true).unwrap();
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
    assert!(no_us.discriminate(&images, false).unwrap().q_us.is_none());
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
