//! The losses of ss-InfoGAN (Spurr et al. 2017, §3): binary cross-entropy for the discriminator on real and
//! fake images, the non-saturating generator loss, cross-entropy for categorical codes (the semi-supervised
//! loss on labelled real images and the information loss on fakes), mean squared error or a Gaussian
//! log-likelihood for continuous codes, and their λ weights from the experiment config. Nothing is
//! implemented here yet; the training loop brings this crate.
