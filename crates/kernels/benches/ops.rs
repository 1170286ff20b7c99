//! The CPU kernels of `ssinfogan_kernels` beside the candle op they replace, forward + backward, at the
//! networks' shapes (batch 64 and 128): leaky ReLU on the discriminator's largest activation, its second
//! convolution, the generator's first transposed convolution, the discriminator's 6272→1024 linear layer, and
//! BatchNorm in training mode on the generator's 6272-wide FC layer and the discriminator's 128-channel 7×7 map.
//!   cargo bench --workspace --bench ops

use candle_core::{Device, Tensor, Var};
use ssinfogan_kernels::{Ops, Pass};

fn main() {
    // As the `ssinfogan` binary does (`keep_freed_buffers`): freed tensor buffers stay in the heap for the next
    // iteration. Without it every buffer above glibc's mmap threshold is a fresh mapping, and page faults
    // dominate the larger batch, ours and candle's alike.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation thresholds; called before any allocation-heavy work.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
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
        let y = ssinfogan_kernels::leaky_relu(x.as_tensor(), 0.01, Ops::Fast).unwrap();
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

/// The discriminator's second convolution (64→128, 14×14→7×7) or the generator's first transposed one
/// (128→64, 7×7→14×14), forward and backward with respect to input, kernel and bias.
fn convolution(bencher: divan::Bencher, batch: usize, transposed: bool, ours: bool) {
    use ssinfogan_kernels::{conv2d, conv_transpose2d, ConvParams};
    let (c_in, c_out, size) = if transposed { (128, 64, 7) } else { (64, 128, 14) };
    let n = batch * c_in * size * size;
    let x = Var::from_vec((0..n).map(|i| (i % 13) as f32 / 13.0).collect(), (batch, c_in, size, size), &Device::Cpu)
        .unwrap();
    let w_shape = if transposed { (c_in, c_out, 4, 4) } else { (c_out, c_in, 4, 4) };
    let weight =
        Var::from_vec((0..c_in * c_out * 16).map(|i| (i % 7) as f32 / 70.0).collect(), w_shape, &Device::Cpu).unwrap();
    let bias = Var::zeros(c_out, candle_core::DType::F32, &Device::Cpu).unwrap();
    let params = ConvParams { stride: 2, padding: 1 };
    let pass = Pass::training(Ops::Fast);
    bencher.bench_local(|| {
        let (x, w, b) = (x.as_tensor(), weight.as_tensor(), bias.as_tensor());
        let y = match (transposed, ours) {
            (false, true) => conv2d(x, w, Some(b), params, &pass).unwrap(),
            (true, true) => conv_transpose2d(x, w, Some(b), params, &pass).unwrap(),
            (false, false) => {
                x.conv2d(w, 1, 2, 1, 1).unwrap().broadcast_add(&b.reshape((1, c_out, 1, 1)).unwrap()).unwrap()
            }
            (true, false) => {
                x.conv_transpose2d(w, 1, 0, 2, 1).unwrap().broadcast_add(&b.reshape((1, c_out, 1, 1)).unwrap()).unwrap()
            }
        };
        y.sum_all().unwrap().backward().unwrap()
    });
}

#[divan::bench(args = [64, 128])]
fn conv2d_ours(bencher: divan::Bencher, batch: usize) {
    convolution(bencher, batch, false, true);
}

#[divan::bench(args = [64, 128])]
fn conv2d_candle(bencher: divan::Bencher, batch: usize) {
    convolution(bencher, batch, false, false);
}

#[divan::bench(args = [64, 128])]
fn conv_transpose2d_ours(bencher: divan::Bencher, batch: usize) {
    convolution(bencher, batch, true, true);
}

#[divan::bench(args = [64, 128])]
fn conv_transpose2d_candle(bencher: divan::Bencher, batch: usize) {
    convolution(bencher, batch, true, false);
}

/// Training-mode BatchNorm forward + backward (input, scale, shift): `spatial` 1 is BatchNorm1d over 6272
/// features, 49 is BatchNorm2d over 128 channels of 7×7.
fn batch_norm(bencher: divan::Bencher, batch: usize, spatial: usize, ours: bool) {
    use candle_core::ModuleT;
    let channels = if spatial == 1 { 6272 } else { 128 };
    let vars = candle_nn::VarMap::new();
    let config = candle_nn::BatchNormConfig { eps: 1e-5, remove_mean: true, affine: true, momentum: 0.1 };
    let vb = candle_nn::VarBuilder::from_varmap(&vars, candle_core::DType::F32, &Device::Cpu);
    let bn = candle_nn::batch_norm(channels, config, vb).unwrap();
    let n = batch * channels * spatial;
    let shape: Vec<usize> = if spatial == 1 { vec![batch, channels] } else { vec![batch, channels, 7, 7] };
    let x = Var::from_vec((0..n).map(|i| (i % 17) as f32 / 17.0).collect(), shape.as_slice(), &Device::Cpu).unwrap();
    bencher.bench_local(|| {
        let y = if ours {
            ssinfogan_kernels::batch_norm(&bn, x.as_tensor(), &Pass::training(Ops::Fast)).unwrap()
        } else {
            bn.forward_t(x.as_tensor(), true).unwrap()
        };
        y.sqr().unwrap().sum_all().unwrap().backward().unwrap()
    });
}

#[divan::bench(args = [64, 128])]
fn batch_norm_1d_ours(bencher: divan::Bencher, batch: usize) {
    batch_norm(bencher, batch, 1, true);
}

#[divan::bench(args = [64, 128])]
fn batch_norm_1d_candle(bencher: divan::Bencher, batch: usize) {
    batch_norm(bencher, batch, 1, false);
}

#[divan::bench(args = [64, 128])]
fn batch_norm_2d_ours(bencher: divan::Bencher, batch: usize) {
    batch_norm(bencher, batch, 49, true);
}

#[divan::bench(args = [64, 128])]
fn batch_norm_2d_candle(bencher: divan::Bencher, batch: usize) {
    batch_norm(bencher, batch, 49, false);
}

/// The discriminator's linear layer (6272→1024), forward and backward with respect to input, weight and bias.
fn linear(bencher: divan::Bencher, batch: usize, ours: bool) {
    use candle_core::Module;
    let vars = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&vars, candle_core::DType::F32, &Device::Cpu);
    let layer = candle_nn::linear(6272, 1024, vb).unwrap();
    let n = batch * 6272;
    let x = Var::from_vec((0..n).map(|i| (i % 13) as f32 / 13.0).collect(), (batch, 6272), &Device::Cpu).unwrap();
    bencher.bench_local(|| {
        let y = if ours {
            ssinfogan_kernels::linear(&layer, x.as_tensor(), &Pass::training(Ops::Fast)).unwrap()
        } else {
            layer.forward(x.as_tensor()).unwrap()
        };
        y.sum_all().unwrap().backward().unwrap()
    });
}

#[divan::bench(args = [64, 128])]
fn linear_ours(bencher: divan::Bencher, batch: usize) {
    linear(bencher, batch, true);
}

#[divan::bench(args = [64, 128])]
fn linear_candle(bencher: divan::Bencher, batch: usize) {
    linear(bencher, batch, false);
}
