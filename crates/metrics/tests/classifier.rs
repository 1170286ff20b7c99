//! The evaluation classifier learns a small fixture far above chance, deterministically.

use candle_core::{Device, Tensor};
use ssinfogan_core::RngStreams;
use ssinfogan_kernels::Ops;
use ssinfogan_metrics::{accuracy, train_classifier, ClassifierConfig};

/// Class k: a bright horizontal bar at rows 2k+4..2k+6 over faint texture.
fn bars(n: usize, offset: usize) -> (Tensor, Tensor) {
    let mut pixels = Vec::with_capacity(n * 784);
    for i in 0..n {
        let class = i % 10;
        pixels.extend((0..784).map(|p| {
            let row = p / 28;
            if row >= 2 * class + 4 && row < 2 * class + 6 {
                0.9f32
            } else {
                ((i + offset) * 7 + p) as f32 % 13.0 / 100.0
            }
        }));
    }
    let labels: Vec<u32> = (0..n).map(|i| (i % 10) as u32).collect();
    (
        Tensor::from_vec(pixels, (n, 1, 28, 28), &Device::Cpu).unwrap(),
        Tensor::from_vec(labels, n, &Device::Cpu).unwrap(),
    )
}

#[test]
fn the_classifier_learns_the_fixture_and_repeats_for_a_seed() {
    let (train_x, train_y) = bars(200, 0);
    let (test_x, test_y) = bars(100, 500);
    let config = ClassifierConfig { epochs: 2, batch_size: 20, learning_rate: 1e-3 };
    let fit = || {
        let streams = RngStreams::new(0);
        let (c, _) = train_classifier(
            &train_x,
            &train_y,
            10,
            &config,
            &mut streams.stream("i"),
            &mut streams.stream("b"),
            &Device::Cpu,
            Ops::Fast,
        )
        .unwrap();
        accuracy(&c, &test_x, &test_y, Ops::Fast).unwrap()
    };
    let first = fit();
    // Chance is 0.1.
    assert!(first > 0.8, "test accuracy {first}");
    assert_eq!(first, fit());
}
