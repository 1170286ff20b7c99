//! Generator and discriminator families of ss-InfoGAN (Spurr et al. 2017, §3; InfoGAN, Chen et al. 2016,
//! appendix C): `mnist` (28×28×1: FC-FC-ConvT-ConvT generator, Conv-Conv-FC body with the D, Q_ss and Q_us
//! heads) and `conv32` (32×32×3), built from a config and the run's `LatentSpec` through candle's
//! `VarBuilder`, initialised as the official code (weights N(0, 0.02), BatchNorm scale N(1, 0.02)) from seeded
//! host streams. Nothing is implemented here yet; the training loop brings this crate.
