//! The places a dataset can come from. Each source either yields splits, says it is not present here
//! ([`DataError::Unavailable`](crate::DataError::Unavailable), so the next source is tried), or reports what is
//! wrong with what it found.

pub mod hub;
pub mod local_idx;
pub mod npm_digits;
pub mod parquet_images;
