//! Morphometry of the 100 real digits of the reference test, one at a time and all at once on every core:
//! `cargo bench -p ssinfogan-morphometry`. Ten thousand digits take 100 times the second line.

use ssinfogan_morphometry::{measure, measure_all};

fn main() {
    divan::main();
}

fn digits() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/mnist-100.png");
    let grid = image::open(path).expect("tests/data/mnist-100.png").to_luma8();
    (0..100)
        .flat_map(|i| {
            let (r, c) = (i / 10, i % 10);
            let grid = &grid;
            (0..784).map(move |p| grid.get_pixel((c * 28 + p % 28) as u32, (r * 28 + p / 28) as u32).0[0])
        })
        .collect()
}

#[divan::bench]
fn one_digit(bencher: divan::Bencher) {
    let images = digits();
    bencher.bench(|| measure(divan::black_box(&images[..784]), 28, 28));
}

#[divan::bench]
fn a_hundred_digits(bencher: divan::Bencher) {
    let images = digits();
    bencher.bench(|| measure_all(divan::black_box(&images), 28, 28));
}
