//! The Hugging Face Hub: the parquet conversion (`refs/convert/parquet`) of a dataset repository, through
//! `hf-hub`, which keeps downloads in the usual Hub cache (`$HF_HOME/hub`, default `~/.cache/huggingface/hub`).
//!
//! Offline, this source must give up in seconds, not minutes: `hf-hub`'s HTTP agent has no connect timeout,
//! so before any request we resolve and connect to the endpoint on a helper thread and wait at most
//! [`PROBE_TIMEOUT`]. Files already in the cache are not downloaded again; without network they are used as they are.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{DataError, Result};
use crate::source_kind::SourceKind;
use crate::sources::parquet_images::{self, ParquetLayout};
use crate::split::Split;

/// The branch where the Hub keeps every dataset converted to parquet.
pub const REVISION: &str = "refs/convert/parquet";
/// The column in which the Hub's conversions of classification datasets keep the class index.
pub const CLASS_COLUMN: &str = "label";
/// How long the reachability probe waits for DNS and a TCP connection.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A dataset repository on the Hub, the config (subdirectory) holding its parquet files, and the name of its
/// image column; each dataset's is in its descriptor ([`crate::catalog`]). The config must have `train/` and
/// `test/` split directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubDataset {
    pub repo: &'static str,
    pub config: &'static str,
    /// `image` for most datasets; the CIFAR-10 conversion names it `img`.
    pub image_column: &'static str,
}

impl HubDataset {
    pub fn describe(&self) -> String {
        format!("Hugging Face Hub {} ({REVISION})", self.repo)
    }
}

/// Where to look: the endpoint (`HF_ENDPOINT`), the cache (`HF_HOME`), and whether the network is off
/// (`HF_HUB_OFFLINE=1`). Tests build it directly instead of touching the environment.
#[derive(Debug, Clone)]
pub struct HubSettings {
    pub endpoint: String,
    pub cache_dir: PathBuf,
    pub offline: bool,
}

impl HubSettings {
    pub fn from_env() -> Self {
        let home = std::env::var_os("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".cache").join("huggingface")
        });
        Self {
            endpoint: std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".to_string()),
            cache_dir: home.join("hub"),
            offline: std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false")),
        }
    }
}

/// How often a Hub request that failed (a dropped connection, a 5xx) is tried again.
#[cfg(feature = "hub")]
const HUB_RETRIES: usize = 3;

/// The parquet shards of the train and test splits, in shard order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubFiles {
    pub train: Vec<PathBuf>,
    pub test: Vec<PathBuf>,
}

/// Reads the downloaded shards into train and test splits.
pub fn load(files: &HubFiles, layout: &ParquetLayout<'_>) -> Result<(Split, Split)> {
    Ok((parquet_images::read_split(&files.train, layout)?, parquet_images::read_split(&files.test, layout)?))
}

/// Finds the shards of both splits: online by listing the repository and downloading what the cache lacks,
/// offline from the cache. Anything that keeps the Hub from answering (with nothing cached) is `Unavailable`.
#[cfg(feature = "hub")]
pub fn fetch(dataset: HubDataset, settings: &HubSettings) -> Result<HubFiles> {
    use hf_hub::{Cache, Repo, RepoType};

    let repo = Repo::with_revision(dataset.repo.to_string(), RepoType::Dataset, REVISION.to_string());
    let cache = Cache::new(settings.cache_dir.clone()).repo(repo.clone());
    let cached = |split: &str| -> Vec<PathBuf> {
        (0..).map_while(|shard| cache.get(&format!("{}/{split}/{shard:04}.parquet", dataset.config))).collect()
    };
    let (train, test) = (cached("train"), cached("test"));
    let in_cache = (!train.is_empty() && !test.is_empty()).then_some(HubFiles { train, test });
    // Online, the listing decides which shards make the dataset (cached ones are not downloaded again), so a
    // download interrupted after some shards is completed rather than read as the whole. Offline, the cache is
    // all there is: it is used, and a missing shard shows as a subset in the provenance record.
    let offline = if settings.offline {
        Err(DataError::unavailable(SourceKind::Hub, "HF_HUB_OFFLINE is set and the files are not in the Hub cache"))
    } else {
        probe(&settings.endpoint, PROBE_TIMEOUT)
    };
    if let Err(offline) = offline {
        return match in_cache {
            Some(files) => {
                tracing::info!(
                    "using {} from the Hub cache {} (the Hub is not reachable to check that every shard is there)",
                    dataset.repo,
                    settings.cache_dir.display()
                );
                Ok(files)
            }
            None => Err(offline),
        };
    }

    let unreachable =
        |e: hf_hub::api::sync::ApiError| DataError::unavailable(SourceKind::Hub, format!("{}: {e}", dataset.repo));
    let api = hf_hub::api::sync::ApiBuilder::from_cache(Cache::new(settings.cache_dir.clone()))
        .with_endpoint(settings.endpoint.clone())
        .with_progress(true)
        // A download cut off by a flaky connection resumes where it stopped, up to this many times.
        .with_retries(HUB_RETRIES)
        .build()
        .map_err(unreachable)?
        .repo(repo);
    // The listing is one small request: asked again after a pause when it fails.
    let mut listing = api.info();
    for attempt in 1..=HUB_RETRIES {
        if listing.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_secs(attempt as u64 * 2));
        listing = api.info();
    }
    let listing = listing.map_err(unreachable)?;
    let shards = |split: &str| -> Result<Vec<PathBuf>> {
        let prefix = format!("{}/{split}/", dataset.config);
        let mut names: Vec<&str> = listing
            .siblings
            .iter()
            .map(|s| s.rfilename.as_str())
            .filter(|n| n.starts_with(&prefix) && n.ends_with(".parquet"))
            .collect();
        names.sort_unstable();
        if names.is_empty() {
            return Err(DataError::Invalid(format!(
                "{} has no parquet files under {prefix} on {REVISION}; the repository layout changed",
                dataset.repo
            )));
        }
        names.into_iter().map(|n| api.get(n).map_err(unreachable)).collect()
    };
    Ok(HubFiles { train: shards("train")?, test: shards("test")? })
}

#[cfg(not(feature = "hub"))]
pub fn fetch(_dataset: HubDataset, _settings: &HubSettings) -> Result<HubFiles> {
    Err(DataError::unavailable(SourceKind::Hub, "this build has no Hub support; rebuild with the `hub` feature"))
}

/// Resolves and connects to the endpoint's host within `timeout`, on a helper thread because DNS lookups
/// cannot be given a timeout in `std`. A thread still stuck in DNS is left to finish on its own.
pub fn probe(endpoint: &str, timeout: Duration) -> Result<()> {
    use std::net::{TcpStream, ToSocketAddrs};

    let (host, port) = host_and_port(endpoint)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let target = format!("{host}:{port}");
    std::thread::spawn(move || {
        let result = target.to_socket_addrs().and_then(|mut addrs| {
            let addr = addrs.next().ok_or_else(|| std::io::Error::other("the name resolved to no address"))?;
            TcpStream::connect_timeout(&addr, timeout).map(drop)
        });
        let _ = tx.send(result);
    });
    let offline = |why: String| {
        DataError::unavailable(
            SourceKind::Hub,
            format!("cannot reach {endpoint} ({why}); offline, use another source or pre-fill the Hub cache"),
        )
    };
    match rx.recv_timeout(timeout) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(offline(e.to_string())),
        Err(_) => Err(offline(format!("no answer within {} s", timeout.as_secs()))),
    }
}

/// `https://host[:port][/path]` → (host, port).
fn host_and_port(endpoint: &str) -> Result<(String, u16)> {
    let bad =
        || DataError::Invalid(format!("HF_ENDPOINT `{endpoint}` is not an http(s) URL such as https://huggingface.co"));
    let (rest, default_port) = if let Some(rest) = endpoint.strip_prefix("https://") {
        (rest, 443)
    } else if let Some(rest) = endpoint.strip_prefix("http://") {
        (rest, 80)
    } else {
        return Err(bad());
    };
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Ok((host.to_string(), port.parse().map_err(|_| bad())?)),
        _ if !authority.is_empty() => Ok((authority.to_string(), default_port)),
        _ => Err(bad()),
    }
}

/// The directory the shards lie in (the config directory of the cached snapshot), for the provenance record.
pub fn location(files: &HubFiles) -> PathBuf {
    files.train.first().and_then(|p| p.parent()).and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(host_and_port("https://huggingface.co").unwrap(), ("huggingface.co".into(), 443));
        assert_eq!(host_and_port("http://127.0.0.1:8080/mirror").unwrap(), ("127.0.0.1".into(), 8080));
        assert!(host_and_port("ftp://x").is_err());
        assert!(host_and_port("https://").is_err());
    }
}
