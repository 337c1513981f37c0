//! JSON lines export: one event per line to stdout or to a file rotated by size.
//!
//! Rotation happens only between lines, so no line is ever split across two files:
//! `FILE` is renamed to `FILE.1`, `FILE.1` to `FILE.2`, ..., and the oldest beyond
//! `max_backups` is deleted.
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub struct RotationPolicy {
    /// Rotate before a line would make the file larger than this; 0 disables rotation.
    pub max_bytes: u64,
    pub max_backups: usize,
    /// Permission bits of new files.
    pub mode: u32,
}

enum Sink {
    Stdout(BufWriter<io::Stdout>),
    File { path: PathBuf, file: BufWriter<File>, size: u64, policy: RotationPolicy },
}

pub struct JsonWriter {
    sink: Sink,
    pub lines: u64,
    pub bytes: u64,
}

fn open(path: &Path, mode: u32) -> io::Result<(BufWriter<File>, u64)> {
    let file = OpenOptions::new().create(true).append(true).mode(mode).open(path)?;
    let size = file.metadata()?.len();
    Ok((BufWriter::with_capacity(1 << 16, file), size))
}

fn backup(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl JsonWriter {
    /// `-` writes to stdout; anything else is a file path.
    pub fn new(target: &str, policy: RotationPolicy) -> io::Result<Self> {
        let sink = if target == "-" {
            Sink::Stdout(BufWriter::with_capacity(1 << 16, io::stdout()))
        } else {
            let path = PathBuf::from(target);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir)?;
            }
            let (file, size) = open(&path, policy.mode)?;
            Sink::File { path, file, size, policy }
        };
        Ok(JsonWriter { sink, lines: 0, bytes: 0 })
    }

    /// Writes one line (the newline is added here).
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.write_parts(&[line])
    }

    /// Writes one line given in pieces, written one after the other (the newline is
    /// added here): a line spliced from cached parts is not copied into one buffer first.
    pub fn write_parts(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let len = parts.iter().map(|p| p.len() as u64).sum::<u64>() + 1;
        let write = |out: &mut dyn Write| -> io::Result<()> {
            parts.iter().try_for_each(|p| out.write_all(p))?;
            out.write_all(b"\n")
        };
        match &mut self.sink {
            Sink::Stdout(out) => write(out)?,
            Sink::File { path, file, size, policy } => {
                if policy.max_bytes > 0 && *size > 0 && *size + len > policy.max_bytes {
                    file.flush()?;
                    rotate(path, policy.max_backups)?;
                    let (new_file, new_size) = open(path, policy.mode)?;
                    *file = new_file;
                    *size = new_size;
                }
                write(file)?;
                *size += len;
            }
        }
        self.lines += 1;
        self.bytes += len;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Stdout(out) => out.flush(),
            Sink::File { file, .. } => file.flush(),
        }
    }
}

fn rotate(path: &Path, max_backups: usize) -> io::Result<()> {
    if max_backups == 0 {
        return fs::remove_file(path);
    }
    let oldest = backup(path, max_backups);
    if oldest.exists() {
        fs::remove_file(&oldest)?;
    }
    for n in (1..max_backups).rev() {
        let from = backup(path, n);
        if from.exists() {
            fs::rename(&from, backup(path, n + 1))?;
        }
    }
    fs::rename(path, backup(path, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_between_lines_and_keeps_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        let policy = RotationPolicy { max_bytes: 1000, max_backups: 3, mode: 0o600 };
        let mut w = JsonWriter::new(path.to_str().unwrap(), policy).unwrap();
        for i in 0..200 {
            w.write_line(format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 37)).as_bytes()).unwrap();
        }
        w.flush().unwrap();
        let mut files = vec![path.clone()];
        files.extend((1..=3).map(|n| backup(&path, n)));
        assert!(!backup(&path, 4).exists());
        let mut seen = Vec::new();
        for f in files.iter().rev() {
            let text = fs::read_to_string(f).unwrap();
            assert!(text.len() as u64 <= 1000, "{} is {} bytes", f.display(), text.len());
            assert!(text.ends_with('\n'));
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                seen.push(v["n"].as_u64().unwrap());
            }
        }
        // The kept files hold the newest events, contiguous and in order.
        let last = *seen.last().unwrap();
        assert_eq!(last, 199);
        let first = seen[0];
        assert_eq!(seen, (first..=last).collect::<Vec<_>>());
        assert_eq!(w.lines, 200);
    }
}
