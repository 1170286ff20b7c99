//! Gradients summed in place reach the variables themselves: a parameter that reaches a layer as another tensor
//! (reshaped, transposed) still trains its variable, with candle's gradient.

use std::sync::Arc;

use candle_core::{Device, Module, Tensor, Var};
use ssinfogan_kernels::{backward, conv2d, linear, ConvParams, GradientSums, Ops, Pass};

fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| (((i * 7919 + seed * 104729) % 1000) as f32 / 500.0 - 1.0) * 0.5).collect()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn assert_close(ours: &[f32], theirs: &[f32], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{what} [{i}]: {a} vs {b}");
    }
}

#[test]
fn a_linear_layer_fed_a_reshaped_or_transposed_weight_still_trains_the_variable() {
    let (batch, inputs, outputs) = (4, 13, 5);
    let x = Tensor::from_vec(values(batch * inputs, 1), (batch, inputs), &Device::Cpu).unwrap();
    let weights = Tensor::from_vec(values(batch * outputs, 4), (batch, outputs), &Device::Cpu).unwrap();
    let bias = Var::from_vec(values(outputs, 3), outputs, &Device::Cpu).unwrap();
    // The weight held flat and reshaped for the layer; and held as (inputs, outputs) and transposed, a strided
    // view the layer copies into a contiguous one.
    let flat_weight = Var::from_vec(values(outputs * inputs, 2), outputs * inputs, &Device::Cpu).unwrap();
    let transposed = Var::from_tensor(
        &Tensor::from_vec(values(outputs * inputs, 2), (outputs, inputs), &Device::Cpu).unwrap().t().unwrap(),
    )
    .unwrap();
    let as_weight = [
        (&flat_weight, flat_weight.as_tensor().reshape((outputs, inputs)).unwrap()),
        (&transposed, transposed.as_tensor().t().unwrap()),
    ];
    for (variable, weight) in as_weight {
        let layer = candle_nn::Linear::new(weight, Some(bias.as_tensor().clone()));
        // candle's layer and candle's backward pass: the reference.
        let theirs = (layer.forward(&x).unwrap() * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let sums = Arc::new(GradientSums::default());
        let y = linear(&layer, &x, &Pass::training(Ops::Fast).summing_into(&sums)).unwrap();
        let ours = backward(&(y * &weights).unwrap().sum_all().unwrap(), &sums).unwrap();
        assert!(ours.reaches(variable.as_tensor()));
        let what = format!("weight of shape {:?}", variable.shape());
        let grad = ours.get(variable.as_tensor()).unwrap_or_else(|| panic!("{what}: no gradient"));
        assert_eq!(grad.shape(), variable.shape(), "{what}");
        assert_close(&flat(grad), &flat(theirs.get(variable.as_tensor()).unwrap()), &what);
        // The bias reached the op as itself and was summed in place.
        assert_close(&flat(ours.get(bias.as_tensor()).unwrap()), &flat(theirs.get(bias.as_tensor()).unwrap()), "bias");
        assert!(sums.is_empty());
    }
}

#[test]
fn a_convolution_fed_a_reshaped_kernel_still_trains_the_variable() {
    let (c_in, c_out, k) = (3, 4, 3);
    let x = Tensor::from_vec(values(2 * c_in * 8 * 8, 1), (2, c_in, 8, 8), &Device::Cpu).unwrap();
    let kernel = Var::from_vec(values(c_out * c_in * k * k, 2), c_out * c_in * k * k, &Device::Cpu).unwrap();
    let bias = Var::from_vec(values(c_out, 3), c_out, &Device::Cpu).unwrap();
    let params = ConvParams { stride: 2, padding: 1 };
    let weights = Tensor::from_vec(values(2 * c_out * 16, 4), (2, c_out, 4, 4), &Device::Cpu).unwrap();
    let shaped = kernel.as_tensor().reshape((c_out, c_in, k, k)).unwrap();
    let theirs = x.conv2d(&shaped, 1, 2, 1, 1).unwrap();
    let theirs = theirs.broadcast_add(&bias.as_tensor().reshape((1, c_out, 1, 1)).unwrap()).unwrap();
    let theirs = (theirs * &weights).unwrap().sum_all().unwrap().backward().unwrap();
    let sums = Arc::new(GradientSums::default());
    let pass = Pass::training(Ops::Fast).summing_into(&sums);
    let y = conv2d(&x, &shaped, Some(bias.as_tensor()), params, &pass).unwrap();
    let ours = backward(&(y * &weights).unwrap().sum_all().unwrap(), &sums).unwrap();
    let grad = ours.get(kernel.as_tensor()).expect("the flat kernel variable has a gradient");
    assert_close(&flat(grad), &flat(theirs.get(kernel.as_tensor()).unwrap()), "kernel");
    assert_close(&flat(ours.get(bias.as_tensor()).unwrap()), &flat(theirs.get(bias.as_tensor()).unwrap()), "bias");
}
