//! The CPU kernels of `ssinfogan_networks::ops` beside the candle op they replace, forward + backward, on the
//! discriminator's largest activation (batch 64 and 128, 64 channels, 14×14).
//!   cargo bench -p ssinfogan-networks --bench ops

use candle_core::{Device, Tensor, Var};

fn main() {
    divan::main();
}

fn input(batch: usize) -> (Var, Tensor) {
    let n = batch * 64 * 14 * 14;
    let values: Vec<f32> = (0..n).map(|i| ((i * 29 % 23) as f32 - 11.5) / 3.0).collect();
    let x = Var::from_vec(values, (batch, 64, 14, 14), &Device::Cpu).unwrap();
    let weights = Tensor::ones((batch, 64, 14, 14), candle_core::DType::F32, &Device::Cpu).unwrap();
    (x, weights)
}

#[divan::bench(args = [64, 128])]
fn leaky_relu_ours(bencher: divan::Bencher, batch: usize) {
    let (x, weights) = input(batch);
    bencher.bench_local(|| {
        let y = ssinfogan_networks::ops::leaky_relu(x.as_tensor(), 0.01).unwrap();
        (y * &weights).unwrap().sum_all().unwrap().backward().unwrap()
    });
}

#[divan::bench(args = [64, 128])]
fn leaky_relu_candle(bencher: divan::Bencher, batch: usize) {
    let (x, weights) = input(batch);
    bencher.bench_local(|| {
        let y = candle_nn::ops::leaky_relu(x.as_tensor(), 0.01).unwrap();
        (y * &weights).unwrap().sum_all().unwrap().backward().unwrap()
    });
}
