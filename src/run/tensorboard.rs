//! TensorBoard event files, written by hand: TFRecord framing (length, masked CRC-32C of the length,
//! the bytes, masked CRC-32C of the bytes) around `Event` protobufs (`wall_time`, `step`, and either
//! `file_version` or a `summary` of `simple_value` scalars). `tensorboard --logdir runs/` reads them.
//! Fed from the run's records: per epoch loss, acc, val_loss, val_acc and lr; per batch the loss.

use super::events::{Record, TrainEvent};
use std::io::Write;
use std::path::{Path, PathBuf};

/// CRC-32C (Castagnoli), as TFRecord uses.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { 0x82F6_3B78 ^ (crc >> 1) } else { crc >> 1 };
        }
    }
    !crc
}

fn masked_crc(bytes: &[u8]) -> u32 {
    let c = crc32c(bytes);
    (c.rotate_right(15)).wrapping_add(0xA282_EAD8)
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(field: u32, data: &[u8], out: &mut Vec<u8>) {
    varint(((field << 3) | 2) as u64, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// An `Event` protobuf: wall_time (1, double), step (2, int64), file_version (3) or summary (5).
fn event(wall_time: f64, step: i64, file_version: Option<&str>, scalars: &[(&str, f64)]) -> Vec<u8> {
    let mut e = vec![0x09];
    e.extend_from_slice(&wall_time.to_le_bytes());
    e.push(0x10);
    varint(step as u64, &mut e);
    if let Some(v) = file_version {
        bytes_field(3, v.as_bytes(), &mut e);
    }
    if !scalars.is_empty() {
        let mut summary = vec![];
        for (tag, value) in scalars {
            let mut v = vec![];
            bytes_field(1, tag.as_bytes(), &mut v);
            v.push(0x15); // simple_value: field 2, 32-bit
            v.extend_from_slice(&(*value as f32).to_le_bytes());
            bytes_field(1, &v, &mut summary);
        }
        bytes_field(5, &summary, &mut e);
    }
    e
}

/// Appends scalars to one event file in a folder (one file per training session).
pub struct TensorBoard {
    file: std::io::BufWriter<std::fs::File>,
    pub path: PathBuf,
}

impl TensorBoard {
    pub fn create(dir: &Path, host: &str) -> std::io::Result<TensorBoard> {
        std::fs::create_dir_all(dir)?;
        let now = super::log::now_unix_f64();
        let path = dir.join(format!("events.out.tfevents.{}.{host}.{}", now as u64, std::process::id()));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        let mut tb = TensorBoard { file: std::io::BufWriter::new(file), path };
        tb.record(&event(now, 0, Some("brain.Event:2"), &[]))?;
        tb.file.flush()?;
        Ok(tb)
    }

    fn record(&mut self, data: &[u8]) -> std::io::Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        self.file.write_all(&len)?;
        self.file.write_all(&masked_crc(&len).to_le_bytes())?;
        self.file.write_all(data)?;
        self.file.write_all(&masked_crc(data).to_le_bytes())
    }

    pub fn scalars(&mut self, wall_time: f64, step: i64, scalars: &[(&str, f64)]) -> std::io::Result<()> {
        self.record(&event(wall_time, step, None, scalars))
    }

    /// Write what a record has for TensorBoard: epoch scalars (step = epoch) and the batch loss
    /// (step = the global batch number). Epoch ends are flushed at once.
    pub fn add(&mut self, rec: &Record) -> std::io::Result<()> {
        match &rec.event {
            TrainEvent::BatchEnd { epoch, batch, batches, loss, .. } => {
                let step = (epoch.saturating_sub(1) * batches + batch) as i64;
                self.scalars(rec.time, step, &[("batch/loss", *loss)])
            }
            TrainEvent::EpochEnd { metrics: m } => {
                self.scalars(
                    rec.time,
                    m.epoch as i64,
                    &[
                        ("epoch/loss", m.train_loss),
                        ("epoch/acc", m.train_acc),
                        ("epoch/val_loss", m.val_loss),
                        ("epoch/val_acc", m.val_acc),
                        ("epoch/lr", m.lr),
                    ],
                )?;
                self.file.flush()
            }
            e if e.is_final() => self.file.flush(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_and_mask_match_the_reference_values() {
        // CRC-32C check value from RFC 3720 (iSCSI): "123456789" → 0xE3069283.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    }

    #[test]
    fn varints_and_event_layout() {
        let mut v = vec![];
        varint(300, &mut v);
        assert_eq!(v, vec![0xAC, 0x02]);
        let e = event(1.5, 7, None, &[("a", 2.0)]);
        assert_eq!(&e[..9], &[0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F]);
        assert_eq!(&e[9..11], &[0x10, 7]);
        // summary { value { tag: "a", simple_value: 2.0 } }
        assert_eq!(&e[11..], &[0x2A, 10, 0x0A, 8, 0x0A, 1, b'a', 0x15, 0, 0, 0, 0x40]);
    }
}
