//! An interim evaluation sees the first images of each code value of the full evaluation's fixed latents, and
//! leaves the stream where the full one leaves it.

use candle_core::{Device, Result, Tensor};
use rand::Rng;
use ssinfogan_core::latent::SemiSupervisedCode;
use ssinfogan_core::{LatentSpec, RngStreams};
use ssinfogan_kernels::{Generator, Ops, Pass};
use ssinfogan_metrics::{generate_first_per_code, generate_per_code};

/// A "generator" that returns its input as a 1×1×width image: every latent value shows in its output.
struct Identity;

impl Generator for Identity {
    fn generate(&self, input: &Tensor, _pass: &Pass) -> Result<Tensor> {
        let (b, w) = input.dims2()?;
        input.reshape((b, 1, 1, w))
    }
}

fn spec() -> LatentSpec {
    LatentSpec {
        semi_supervised: vec![SemiSupervisedCode { name: "digit".into(), size: 3, label: "class".into() }],
        unsupervised_categorical: vec![],
        continuous: 2,
        noise: 5,
    }
}

fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.flatten_from(1).unwrap().to_vec2().unwrap()
}

#[test]
fn interim_images_are_the_first_of_each_code_of_the_full_set() {
    let latent = spec();
    // 300 per code crosses a 250-image chunk, so the subset is taken inside the first chunk of each value.
    for used in [1, 40, 250, 260, 300] {
        let mut full_rng = RngStreams::new(7).stream("evaluation");
        let mut part_rng = RngStreams::new(7).stream("evaluation");
        let (full, full_codes) =
            generate_per_code(&Identity, &latent, 300, &mut full_rng, &Device::Cpu, Ops::Fast).unwrap();
        let (part, part_codes) =
            generate_first_per_code(&Identity, &latent, used, 300, &mut part_rng, &Device::Cpu, Ops::Fast).unwrap();
        let (full, part) = (rows(&full), rows(&part));
        assert_eq!(part.len(), 3 * used);
        for code in 0..3 {
            assert_eq!(&part[code * used..(code + 1) * used], &full[code * 300..code * 300 + used], "used {used}");
            assert!(part_codes[code * used..(code + 1) * used].iter().all(|&c| c == code as i64));
        }
        assert_eq!(full_codes.len(), 900);
        // Both leave the stream at the same place.
        assert_eq!(full_rng.random::<u64>(), part_rng.random::<u64>(), "used {used}");
    }
}

#[test]
fn more_images_than_drawn_or_none_is_an_error() {
    let mut rng = RngStreams::new(7).stream("evaluation");
    for used in [0, 301] {
        let e = generate_first_per_code(&Identity, &spec(), used, 300, &mut rng, &Device::Cpu, Ops::Fast).unwrap_err();
        assert!(e.to_string().contains(&format!("cannot generate {used} of 300")), "{e}");
    }
}
