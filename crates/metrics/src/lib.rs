//! How ss-InfoGAN runs are measured: the independent evaluation classifier and its training, C_err under the
//! identity, greedy (official) and Hungarian code-to-class mappings, Q_err on real and fake images, the
//! mutual-information estimates (InfoGAN's lower bound and plug-in estimates, in nats), the Fréchet distance in
//! the classifier's feature space, and convergence summaries. Nothing is implemented here yet; the metrics
//! work brings this crate.
