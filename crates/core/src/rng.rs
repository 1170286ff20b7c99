//! Named, seeded host random streams.
//!
//! candle cannot seed its CPU random generator, so nothing in this workspace draws from it: weight
//! initialisation, noise, codes, shuffles, the labelled subset and the labelled/unlabelled batch coin each take
//! their own ChaCha8 stream, derived from the run seed and the stream's name. Adding a new stream (or drawing
//! more numbers from one) therefore never shifts the numbers any other stream produces, and the same seed gives
//! the same run on every machine.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The source of every random stream of one run.
///
/// ```
/// use rand::Rng;
/// use ssinfogan_core::RngStreams;
/// let streams = RngStreams::new(1);
/// let a: u64 = streams.stream("labelled-subset").random();
/// let b: u64 = streams.stream("labelled-subset").random();
/// let c: u64 = streams.stream("batch-coin").random();
/// assert_eq!(a, b);
/// assert_ne!(a, c);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RngStreams {
    seed: u64,
}

impl RngStreams {
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A fresh generator for the stream called `name`: the run seed is the ChaCha key, the name picks the
    /// ChaCha stream (64-bit FNV-1a of its UTF-8 bytes, a fixed function so stream numbers never change).
    pub fn stream(&self, name: &str) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(stream_id(name));
        rng
    }
}

/// 64-bit FNV-1a: stable across platforms and Rust versions, unlike `std`'s `Hasher`s.
fn stream_id(name: &str) -> u64 {
    name.bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn stream_ids_are_the_published_fnv1a_values() {
        // Reference values of 64-bit FNV-1a from the algorithm's specification (draft-eastlake-fnv).
        assert_eq!(stream_id(""), 0xcbf29ce484222325);
        assert_eq!(stream_id("a"), 0xaf63dc4c8601ec8c);
        assert_eq!(stream_id("foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn different_seeds_give_different_numbers() {
        let a: u64 = RngStreams::new(1).stream("noise").random();
        let b: u64 = RngStreams::new(2).stream("noise").random();
        assert_ne!(a, b);
    }
}
