//! The ss-InfoGAN training loop (Spurr et al. 2017, §3 and the official Torch code): the D/Q step and the G
//! step with their two Adam optimisers, the labelled/unlabelled batch schedule, per-epoch evaluation hooks,
//! `metrics.csv`, checkpoints in safetensors with optimiser and random-stream state, and resume. It drives
//! networks and losses through traits, not concrete types. Nothing is implemented here yet.
