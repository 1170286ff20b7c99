//! Loops compiled for the vector instructions of the CPU they run on ([`run`]).
//!
//! The binary targets baseline x86-64, so that it runs on any of them: SSE2, two f64 or four f32 values per
//! instruction. The per-channel sums in f64 (BatchNorm's statistics and backward sums, the layers' bias
//! gradients) are loops the compiler vectorises; [`run`] compiles such a loop again with AVX-512F and with AVX2
//! enabled and runs the widest the CPU has: on most of the networks' BatchNorm shapes (one thread, in cache) the
//! AVX-512 sums take about half the baseline's time, though some, such as (128, 64, 14 × 14), gain little.
//! BatchNorm's element-wise passes do not go through here: compiled with AVX-512 they ran slower than the
//! baseline build's, so they stay as it compiles them.
//!
//! The values are the same to the bit whichever runs: Rust neither reassociates floating-point sums nor
//! contracts a multiply and an add into a fused one, so a wider instruction set changes how many values one
//! instruction handles, never the arithmetic on each (`sums`' tests compare the paths bit for bit).

/// A loop for [`run`]: its data in the fields, its body in [`VectorLoop::run`].
pub(crate) trait VectorLoop {
    type Output;

    /// The loop. Implementations mark it `#[inline(always)]`: it is then compiled into each instruction set's
    /// entry below instead of called from it (a closure cannot be marked, and a large one is called).
    fn run(self) -> Self::Output;
}

/// Runs `body` compiled for AVX-512F where the CPU has it, else for AVX2 where it has that, else as the
/// baseline build compiled it.
pub(crate) fn run<L: VectorLoop>(body: L) -> L::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { avx512(body) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { avx2(body) };
        }
    }
    body.run()
}

/// `body` compiled with AVX-512F.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512<L: VectorLoop>(body: L) -> L::Output {
    body.run()
}

/// `body` compiled with AVX2.
///
/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn avx2<L: VectorLoop>(body: L) -> L::Output {
    body.run()
}

/// Each entry [`run`] may take on this CPU, with `body` made anew for each: for tests that compare them (a
/// path the CPU lacks is not run, so a machine without AVX-512 checks only the others).
#[cfg(test)]
pub(crate) fn every_path<L: VectorLoop>(body: impl Fn() -> L) -> Vec<(&'static str, L::Output)> {
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut outputs = vec![("baseline", body().run())];
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            outputs.push(("avx2", unsafe { avx2(body()) }));
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            outputs.push(("avx512f", unsafe { avx512(body()) }));
        }
    }
    outputs
}
