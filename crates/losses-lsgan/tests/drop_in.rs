//! `ssinfogan-losses-lsgan` against `ssinfogan-losses`, the crate it replaces: its adversarial loss is LSGAN's
//! least squares (the closed form, its gradient, and not the cross-entropy), and every other loss is the
//! original's to the bit on the same inputs, so that swapping the crate changes the adversarial game only.

use candle_core::{Device, Result, Tensor, Var};
use ssinfogan_core::{LatentBatch, LatentSpec, SemiSupervisedCode};
use ssinfogan_losses as original;
use ssinfogan_losses_lsgan as lsgan;

fn scalar(t: Tensor) -> f32 {
    t.to_scalar::<f32>().unwrap()
}

/// Discriminator outputs of a batch of four, shaped (batch, 1) as `d_logits` are. Every value, and every step of
/// the least-squares loss and its gradient on them, is a short binary fraction, exact in f32.
const SCORES: [f32; 4] = [0.5, -1.0, 2.0, 3.25];

fn scores() -> Tensor {
    Tensor::from_slice(&SCORES, (4, 1), &Device::Cpu).unwrap()
}

/// LSGAN (Mao et al. 2017, eq. 2 with a = 0, b = c = 1): ½ · mean over the batch of (D(x) − target)².
fn least_squares(target: f64) -> f64 {
    SCORES.iter().map(|&x| (f64::from(x) - target).powi(2)).sum::<f64>() / SCORES.len() as f64 / 2.0
}

/// The standard GAN's binary cross-entropy on logits: mean over the batch of −t·ln σ(x) − (1 − t)·ln(1 − σ(x)).
fn cross_entropy(target: f64) -> f64 {
    let softplus = |x: f64| x.exp().ln_1p();
    SCORES.iter().map(|&x| target * softplus(-f64::from(x)) + (1.0 - target) * softplus(f64::from(x))).sum::<f64>()
        / SCORES.len() as f64
}

#[test]
fn the_adversarial_loss_is_least_squares_not_cross_entropy() {
    // The training loop calls the loss through this signature: the swap must keep it (a compile error if not).
    let [ours, theirs]: [fn(&Tensor, f64) -> Result<Tensor>; 2] = [lsgan::adversarial_loss, original::adversarial_loss];
    // Targets: 1 for real images in the D step and for fakes in the G step, 0 for fakes in the D step; ½ only
    // to show that the target is any number, not a class.
    for target in [1.0, 0.0, 0.5] {
        let ours = scalar(ours(&scores(), target).unwrap());
        assert_eq!(f64::from(ours), least_squares(target), "LSGAN loss at target {target}");
        let theirs = scalar(theirs(&scores(), target).unwrap());
        assert!((f64::from(theirs) - cross_entropy(target)).abs() < 1e-6, "the original is the cross-entropy");
        // Here the two differ by 0.30 to 0.80 nats (least is target 0: 1.977 against 1.676): the swap changes
        // the game.
        assert!((ours - theirs).abs() > 0.25, "target {target}: LSGAN {ours}, cross-entropy {theirs}");
    }
    // Worked by hand: (0.25 + 4 + 1 + 5.0625) / 4 / 2 at target 1, (0.25 + 1 + 4 + 10.5625) / 8 at target 0.
    assert_eq!((least_squares(1.0), least_squares(0.0)), (1.2890625, 1.9765625));
}

#[test]
fn the_least_squares_gradient_is_the_distance_to_the_target_over_the_batch() {
    // d/dx ½ · mean((x − t)²) = (x − t) / n: the signal the generator step takes through D. The cross-entropy's
    // would be (σ(x) − t) / n, bounded by 1/n, where this one grows with the distance.
    let scores = Var::from_tensor(&scores()).unwrap();
    for target in [1.0f32, 0.0] {
        let gradients = lsgan::adversarial_loss(scores.as_tensor(), f64::from(target)).unwrap().backward().unwrap();
        let gradient: Vec<f32> = gradients.get(&scores).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let expected: Vec<f32> = SCORES.iter().map(|&x| (x - target) / SCORES.len() as f32).collect();
        assert_eq!(gradient, expected, "target {target}");
    }
}

/// A latent spec with every kind of code: two semi-supervised codes (3 and 2 values), an unsupervised
/// categorical code (3 values) and two continuous codes.
fn latent() -> LatentSpec {
    let code = |name: &str, size| SemiSupervisedCode { name: name.into(), size, label: name.into() };
    LatentSpec {
        semi_supervised: vec![code("digit", 3), code("parity", 2)],
        unsupervised_categorical: vec![3],
        continuous: 2,
        noise: 1,
    }
}

fn codes() -> LatentBatch {
    LatentBatch {
        batch: 2,
        semi_supervised: vec![vec![2, 0], vec![1, 1]],
        unsupervised_categorical: vec![vec![0, 2]],
        continuous: vec![0.75, -0.25, -1.0, 0.5],
        noise: vec![0.0, 0.0],
    }
}

/// ln Σ exp(row) − row[target]: one row's cross-entropy, in f64.
fn row_cross_entropy(row: &[f64], target: usize) -> f64 {
    row.iter().map(|v| v.exp()).sum::<f64>().ln() - row[target]
}

/// The same value from both crates, bit for bit, and that value.
fn same(ours: Result<Tensor>, theirs: Result<Tensor>) -> f32 {
    let (ours, theirs) = (scalar(ours.unwrap()), scalar(theirs.unwrap()));
    assert_eq!(ours.to_bits(), theirs.to_bits(), "{ours} here, {theirs} in ssinfogan-losses");
    ours
}

#[test]
fn the_information_and_semi_supervised_losses_are_the_originals() {
    let device = Device::Cpu;
    let (latent, codes) = (latent(), codes());

    // Q_ss logits for both semi-supervised codes side by side (3 + 2 columns).
    let q_ss = [[1.0, -0.5, 2.0, 0.25, -1.0], [0.0, 3.0, -2.0, 1.5, 0.5]];
    let q_ss_logits = Tensor::new(&q_ss.map(|r| r.map(|v: f64| v as f32)), &device).unwrap();
    let targets = [0, 1].map(|k| codes.semi_supervised_target(k, &device).unwrap());
    let semi_supervised = same(
        lsgan::semi_supervised_loss(&latent, &q_ss_logits, &targets),
        original::semi_supervised_loss(&latent, &q_ss_logits, &targets),
    );
    // The sum over codes of each code's mean cross-entropy: codes (2, 0) for the digit, (1, 1) for the parity.
    let expected = (row_cross_entropy(&q_ss[0][..3], 2) + row_cross_entropy(&q_ss[1][..3], 0)) / 2.0
        + (row_cross_entropy(&q_ss[0][3..], 1) + row_cross_entropy(&q_ss[1][3..], 1)) / 2.0;
    assert!((f64::from(semi_supervised) - expected).abs() < 1e-6, "{semi_supervised} against {expected}");

    // The experiment config deserialises into the original's `LossConfig`: the swap keeps its type (a compile
    // error if not).
    let config: original::LossConfig = lsgan::LossConfig {
        lambda_ss: 2.0,
        lambda_us: 0.8,
        continuous: lsgan::ContinuousLoss::GaussianNll,
        q_ss_on_fakes: false,
    };
    // Q_us: the categorical code's logits, then per continuous code a mean (and a log standard deviation).
    for continuous in [original::ContinuousLoss::Mse, config.continuous] {
        let width = lsgan::q_us_width(&latent, continuous);
        assert_eq!(width, original::q_us_width(&latent, continuous));
        let values: Vec<f32> = (0..2 * width).map(|i| (i as f32 - 4.0) * 0.375).collect();
        let q_us = Tensor::from_vec(values, (2, width), &device).unwrap();
        let loss = |t: Option<Tensor>| t.ok_or_else(|| candle_core::Error::Msg("no unsupervised code".into()));
        same(
            lsgan::unsupervised_loss(&latent, continuous, Some(&q_us), &codes).and_then(loss),
            original::unsupervised_loss(&latent, continuous, Some(&q_us), &codes).and_then(loss),
        );
    }
    assert!(lsgan::unsupervised_loss(&latent, lsgan::ContinuousLoss::Mse, None, &codes).unwrap().is_none());

    // The cross-entropy of the discriminator's logits stays available, and the original's.
    for target in [1.0, 0.0] {
        let value = same(lsgan::bce_with_logits(&scores(), target), original::bce_with_logits(&scores(), target));
        assert!((f64::from(value) - cross_entropy(target)).abs() < 1e-6);
    }
}
