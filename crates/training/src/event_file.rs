//! TensorBoard's event files, so that `tensorboard --logdir results/` shows every run as it trains: one file per
//! training process in the run directory (`events.out.tfevents.<seconds>.<host>`), holding scalars only.
//!
//! The format is TensorFlow's record framing around `Event` protocol buffers. Written here by hand rather than
//! through a protobuf code generator and a TensorBoard crate: three messages with five fields in all, and a
//! dependency tree that would dwarf them. `crates/cli/tests/tensorboard.rs` reads the files back with
//! TensorBoard's own reader.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Appends events to one event file.
pub struct EventFile {
    path: PathBuf,
    file: File,
}

impl EventFile {
    /// Creates a new event file in `dir`, starting with the version record TensorBoard expects first. Each
    /// process writes its own file: a resumed run adds one, and TensorBoard reads the files of a directory in
    /// the order of their names, dropping the steps a later file writes again.
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        let now = wall_time();
        let host = hostname();
        let mut name = format!("events.out.tfevents.{}.{host}", now as u64);
        // Two processes in one second (a run stopped and resumed at once): a name of its own each.
        let mut n = 1;
        while dir.join(&name).exists() {
            n += 1;
            name = format!("events.out.tfevents.{}.{host}.{n}", now as u64);
        }
        let path = dir.join(name);
        let mut file = std::fs::OpenOptions::new().create_new(true).append(true).open(&path)?;
        file.write_all(&record(&version_event(now)))?;
        Ok(Self { path, file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event holding `scalars` (tag, value) at `step`. Values are stored as f32, as TensorBoard's
    /// scalars are.
    pub fn scalars(&mut self, step: u64, scalars: &[(String, f64)]) -> std::io::Result<()> {
        if scalars.is_empty() {
            return Ok(());
        }
        self.file.write_all(&record(&scalar_event(wall_time(), step, scalars)))
    }
}

fn wall_time() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_else(|_| "localhost".into());
    let plain: String = name.trim().chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).collect();
    if plain.is_empty() {
        "localhost".into()
    } else {
        plain
    }
}

/// One record of TensorFlow's framing: the length (u64, little-endian), its masked CRC-32C, the data, the
/// data's masked CRC-32C.
pub fn record(data: &[u8]) -> Vec<u8> {
    let length = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc(&length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// TensorFlow's masked CRC-32C (Castagnoli): rotated right by 15 bits plus a constant, so that a CRC stored
/// inside checksummed data does not checksum to zero.
pub fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

// Protocol buffer encoding of the few fields written: `Event { double wall_time = 1; int64 step = 2; oneof
// { string file_version = 3; Summary summary = 5; } }`, `Summary { repeated Value value = 1; }`,
// `Summary.Value { string tag = 1; float simple_value = 2; }`.

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A field's key: its number and wire type (0 varint, 1 64-bit, 2 length-delimited, 5 32-bit).
fn key(field: u64, wire_type: u64, out: &mut Vec<u8>) {
    varint(field << 3 | wire_type, out);
}

fn bytes_field(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
    key(field, 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn event_head(wall_time: f64, step: u64, out: &mut Vec<u8>) {
    key(1, 1, out);
    out.extend_from_slice(&wall_time.to_le_bytes());
    if step != 0 {
        key(2, 0, out);
        varint(step, out);
    }
}

fn version_event(wall_time: f64) -> Vec<u8> {
    let mut out = Vec::new();
    event_head(wall_time, 0, &mut out);
    bytes_field(3, b"brain.Event:2", &mut out);
    out
}

fn scalar_event(wall_time: f64, step: u64, scalars: &[(String, f64)]) -> Vec<u8> {
    let mut summary = Vec::new();
    for (tag, value) in scalars {
        let mut entry = Vec::new();
        bytes_field(1, tag.as_bytes(), &mut entry);
        key(2, 5, &mut entry);
        entry.extend_from_slice(&(*value as f32).to_le_bytes());
        bytes_field(1, &entry, &mut summary);
    }
    let mut out = Vec::new();
    event_head(wall_time, step, &mut out);
    bytes_field(5, &summary, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_and_its_mask_are_tensorflow_s() {
        // The CRC-32C check value (RFC 3720, appendix B.4) and TensorFlow's mask of it, computed by hand:
        // 0xe3069283 rotated right by 15 is 0x2507c60d, plus 0xa282ead8 is 0xc78ab0e5.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
    }

    #[test]
    fn a_record_frames_its_data_with_length_and_checksums() {
        let data = b"abc";
        let framed = record(data);
        assert_eq!(framed.len(), 8 + 4 + 3 + 4);
        assert_eq!(&framed[..8], &3u64.to_le_bytes());
        assert_eq!(&framed[8..12], &masked_crc(&3u64.to_le_bytes()).to_le_bytes());
        assert_eq!(&framed[12..15], data);
        assert_eq!(&framed[15..], &masked_crc(data).to_le_bytes());
    }

    #[test]
    fn a_scalar_event_is_the_protocol_buffer_tensorboard_reads() {
        let event = scalar_event(1.5, 300, &[("d_real".to_string(), 0.25)]);
        let mut expected = vec![0x09];
        expected.extend_from_slice(&1.5f64.to_le_bytes());
        expected.extend_from_slice(&[0x10, 0xac, 0x02]); // step 300 as a varint
                                                         // summary (field 5) ← value (field 1) ← tag (field 1) "d_real", simple_value (field 2, 32-bit) 0.25
        expected.extend_from_slice(&[0x2a, 15, 0x0a, 13, 0x0a, 6]);
        expected.extend_from_slice(b"d_real");
        expected.push(0x15);
        expected.extend_from_slice(&0.25f32.to_le_bytes());
        assert_eq!(event, expected);
        let version = version_event(2.0);
        assert_eq!(&version[9..], &[&[0x1a, 13][..], b"brain.Event:2"].concat()[..]);
    }

    #[test]
    fn each_process_gets_a_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = EventFile::create(dir.path()).unwrap();
        let b = EventFile::create(dir.path()).unwrap();
        assert_ne!(a.path(), b.path());
        a.scalars(10, &[("x".to_string(), 1.0)]).unwrap();
        let bytes = std::fs::read(a.path()).unwrap();
        // The version record, then the scalar record.
        let first = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let second_at = 8 + 4 + first + 4;
        let second = u64::from_le_bytes(bytes[second_at..second_at + 8].try_into().unwrap()) as usize;
        assert_eq!(bytes.len(), second_at + 16 + second);
    }
}
