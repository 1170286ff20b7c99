//! One Adam step of the largest layer (FC 6272→1024, 6.4M weights): the fused in-place update beside candle's
//! tensor ops (`Ops::Candle`).
//!   cargo bench --workspace --bench adam

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use ssinfogan_kernels::{backward, GradientSums, Gradients, Ops};
use ssinfogan_training::{Adam, AdamConfig};

fn main() {
    divan::main();
}

const CONFIG: AdamConfig = AdamConfig { learning_rate: 1e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 };

fn setup(fused: bool) -> (Adam, Gradients) {
    let varmap = VarMap::new();
    let w = varmap.get((1024, 6272), "weight", candle_nn::Init::Const(0.5), DType::F32, &Device::Cpu).unwrap();
    let adam = Adam::new(&varmap, CONFIG, if fused { Ops::Fast } else { Ops::Candle }).unwrap();
    let target = Tensor::ones((1024, 6272), DType::F32, &Device::Cpu).unwrap();
    let grads = backward(&(w * target).unwrap().sum_all().unwrap(), &GradientSums::default()).unwrap();
    (adam, grads)
}

#[divan::bench]
fn adam_step_fused(bencher: divan::Bencher) {
    let (mut adam, grads) = setup(true);
    bencher.bench_local(|| adam.step(&grads).unwrap());
}

#[divan::bench]
fn adam_step_candle_ops(bencher: divan::Bencher) {
    let (mut adam, grads) = setup(false);
    bencher.bench_local(|| adam.step(&grads).unwrap());
}
