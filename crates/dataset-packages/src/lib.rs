//! Datasets that a system package installs: the package's name and the directory its files land in.
//!
//! `ssinfogan-datasets` reads a dataset from that directory (its `debian` source); `cargo xtask data` may
//! install the package first. Both read the facts here, and this crate has no dependencies, so orchestration
//! learns them without building the numerics.
//!
//! ```
//! let package = ssinfogan_dataset_packages::debian_package("fashion-mnist").unwrap();
//! assert_eq!(package.package, "dataset-fashion-mnist");
//! ```

/// A Debian package that installs a dataset's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebianPackage {
    /// The dataset, spelled as on the command line and in `ssinfogan-datasets`' catalog.
    pub dataset: &'static str,
    /// The package to install: `apt-get install <package>`.
    pub package: &'static str,
    /// The directory the package puts the dataset's files in.
    pub dir: &'static str,
}

/// Fashion-MNIST's four IDX files (Xiao et al., 2017), packaged by Debian.
pub const FASHION_MNIST: DebianPackage = DebianPackage {
    dataset: "fashion-mnist",
    package: "dataset-fashion-mnist",
    dir: "/usr/share/datasets/fashion-mnist",
};

/// Every dataset that comes as a Debian package.
pub const DEBIAN_PACKAGES: [DebianPackage; 1] = [FASHION_MNIST];

/// The Debian package of `dataset`, if it comes as one.
pub fn debian_package(dataset: &str) -> Option<DebianPackage> {
    DEBIAN_PACKAGES.into_iter().find(|p| p.dataset == dataset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dataset_has_at_most_one_package() {
        for (i, a) in DEBIAN_PACKAGES.iter().enumerate() {
            for b in &DEBIAN_PACKAGES[i + 1..] {
                assert_ne!(a.dataset, b.dataset, "two packages for one dataset: lookup would see only the first");
            }
        }
        assert_eq!(debian_package("mnist"), None);
    }
}
