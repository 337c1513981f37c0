//! JSON lines export: one event per line to stdout or to a file rotated by size.
//!
//! Rotation happens only between lines, so no line is ever split across two files:
//! `FILE` is renamed to `FILE.1`, `FILE.1` to `FILE.2`, ..., and the oldest beyond
//! `max_backups` is deleted.
//!
//! Lines are gathered into chunks that a thread of the writer's own ("tetrad-write") writes:
//! the kernel's copy of the lines into the page cache, a third of the export's time in a
//! burst, then runs beside the encoding of the next lines instead of after it. At most
//! [`CHUNKS_WAITING`] chunks wait for that thread; past that the export waits for it, so a
//! slow disk still slows the export (which the bus sees) instead of filling memory. The
//! few lines of a quiet moment are written by the export itself while that thread has
//! nothing to do: waking it for each lone event would cost more than the write.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

/// A chunk is handed to the writing thread once the next line would take it past this.
const CHUNK: usize = 128 * 1024;
const CHUNKS_WAITING: usize = 2;

pub struct RotationPolicy {
    /// Rotate before a line would make the file larger than this; 0 disables rotation.
    pub max_bytes: u64,
    pub max_backups: usize,
    /// Permission bits of new files.
    pub mode: u32,
}

/// Where the writing thread writes.
enum Sink {
    Stdout,
    File { path: PathBuf, file: File, policy: RotationPolicy },
}

/// The sink, used by the writing thread, or by the export when no job waits.
struct Shared {
    sink: Mutex<Sink>,
    /// Jobs sent and not yet done (the writing thread counts one done with `sink` locked).
    jobs_pending: AtomicUsize,
}

enum Job {
    Write(Vec<u8>),
    Rotate,
    /// Answered once everything handed over before it is written.
    Flush(Sender<()>),
}

pub struct JsonWriter {
    /// The lines gathered and not yet handed over.
    chunk: Vec<u8>,
    /// `None` once dropped, which ends the writing thread.
    jobs: Option<Sender<Job>>,
    /// Written chunks, to gather into again.
    spare: Receiver<Vec<u8>>,
    /// Failures of earlier writes, reported by the next call.
    report: Sender<io::Error>,
    errors: Receiver<io::Error>,
    shared: Arc<Shared>,
    writing: Option<JoinHandle<()>>,
    /// The file's size with the lines given so far, and its limit (0: never rotated).
    size: u64,
    max_bytes: u64,
    pub lines: u64,
    pub bytes: u64,
}

fn open(path: &Path, mode: u32) -> io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).mode(mode).open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

fn backup(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl Sink {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Sink::File { file, .. } => file.write_all(bytes),
        }
    }

    /// Writes a chunk of lines; a failure says how many it lost.
    fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.write_all(chunk).map_err(|e| {
            let lines = chunk.iter().filter(|&&b| b == b'\n').count();
            io::Error::new(e.kind(), format!("{e} (events lost: {lines})"))
        })
    }

    /// Renames the file away and opens a new one; on failure the old one stays in use.
    fn rotate(&mut self) -> io::Result<()> {
        let Sink::File { path, file, policy } = self else { return Ok(()) };
        rotate(path, policy.max_backups)?;
        *file = open(path, policy.mode)?.0;
        Ok(())
    }
}

/// The writing thread: runs until the writer is dropped.
fn write_jobs(
    shared: Arc<Shared>,
    jobs: Receiver<Job>,
    spare: Sender<Vec<u8>>,
    errors: Sender<io::Error>,
) {
    for job in jobs {
        let mut sink = shared.sink.lock().unwrap_or_else(|e| e.into_inner());
        let done = match job {
            Job::Write(mut chunk) => {
                let done = sink.write_chunk(&chunk);
                chunk.clear();
                let _ = spare.send(chunk);
                done
            }
            Job::Rotate => sink.rotate(),
            Job::Flush(answer) => {
                let _ = answer.send(());
                Ok(())
            }
        };
        shared.jobs_pending.fetch_sub(1, Ordering::Release);
        drop(sink);
        if let Err(e) = done {
            let _ = errors.send(e);
        }
    }
}

impl JsonWriter {
    /// `-` writes to stdout; anything else is a file path.
    pub fn new(target: &str, policy: RotationPolicy) -> io::Result<Self> {
        let (sink, size, max_bytes) = if target == "-" {
            (Sink::Stdout, 0, 0)
        } else {
            let path = PathBuf::from(target);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir)?;
            }
            let (file, size) = open(&path, policy.mode)?;
            let max_bytes = policy.max_bytes;
            (Sink::File { path, file, policy }, size, max_bytes)
        };
        let (jobs, queued) = bounded(CHUNKS_WAITING);
        let (give_back, spare) = unbounded();
        let (report, errors) = unbounded();
        let shared = Arc::new(Shared { sink: Mutex::new(sink), jobs_pending: AtomicUsize::new(0) });
        let writing = {
            let (shared, report) = (shared.clone(), report.clone());
            thread::Builder::new()
                .name("tetrad-write".into())
                .spawn(move || write_jobs(shared, queued, give_back, report))?
        };
        Ok(JsonWriter {
            chunk: Vec::new(),
            jobs: Some(jobs),
            spare,
            report,
            errors,
            shared,
            writing: Some(writing),
            size,
            max_bytes,
            lines: 0,
            bytes: 0,
        })
    }

    /// Writes one line (the newline is added here).
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.write_parts(&[line])
    }

    /// Writes one line given in pieces, one after the other (the newline is added here).
    /// An error is a failure of an earlier write, found since the last call.
    pub fn write_parts(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let len = parts.iter().map(|p| p.len()).sum::<usize>() + 1;
        if self.max_bytes > 0 && self.size > 0 && self.size + len as u64 > self.max_bytes {
            self.hand_over();
            self.send(Job::Rotate);
            self.size = 0;
        }
        if !self.chunk.is_empty() && self.chunk.len() + len > CHUNK {
            self.send_chunk();
        }
        if self.chunk.capacity() == 0 {
            self.chunk = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        }
        parts.iter().for_each(|p| self.chunk.extend_from_slice(p));
        self.chunk.push(b'\n');
        self.size += len as u64;
        self.lines += 1;
        self.bytes += len as u64;
        self.failure()
    }

    /// Hands the lines gathered so far to the writing thread, without waiting for it; or
    /// writes them here when that thread has nothing to do.
    pub fn hand_over(&mut self) {
        if self.chunk.is_empty() {
            return;
        }
        if let Ok(mut sink) = self.shared.sink.try_lock() {
            // Checked with the sink locked: every job sent before is written.
            if self.shared.jobs_pending.load(Ordering::Acquire) == 0 {
                if let Err(e) = sink.write_chunk(&self.chunk) {
                    let _ = self.report.send(e);
                }
                self.chunk.clear();
                return;
            }
        }
        self.send_chunk();
    }

    /// Hands the lines gathered so far to the writing thread.
    fn send_chunk(&mut self) {
        if !self.chunk.is_empty() {
            let chunk = std::mem::take(&mut self.chunk);
            self.send(Job::Write(chunk));
        }
    }

    /// Hands the lines over and frees the spare chunks (for a quiet period); an error is a
    /// failure of an earlier write.
    pub fn idle(&mut self) -> io::Result<()> {
        self.hand_over();
        while self.spare.try_recv().is_ok() {}
        self.failure()
    }

    /// Writes everything given so far and waits until it is written.
    pub fn flush(&mut self) -> io::Result<()> {
        self.hand_over();
        let (answer, written) = bounded(1);
        self.send(Job::Flush(answer));
        if written.recv().is_err() {
            return Err(io::Error::other("the JSON export's writing thread has stopped"));
        }
        self.failure()
    }

    fn send(&mut self, job: Job) {
        // The writing thread ends only when `jobs` is dropped (or if it panicked, which
        // the next flush reports).
        if let Some(jobs) = &self.jobs {
            self.shared.jobs_pending.fetch_add(1, Ordering::AcqRel);
            if jobs.send(job).is_err() {
                self.shared.jobs_pending.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    fn failure(&mut self) -> io::Result<()> {
        self.errors.try_recv().map_or(Ok(()), Err)
    }
}

impl Drop for JsonWriter {
    /// Writes what is left, then ends the writing thread.
    fn drop(&mut self) {
        self.hand_over();
        self.jobs = None;
        if let Some(writing) = self.writing.take() {
            let _ = writing.join();
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

    #[test]
    fn lines_are_written_on_drop_and_failed_writes_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        let policy = || RotationPolicy { max_bytes: 0, max_backups: 0, mode: 0o600 };
        let mut w = JsonWriter::new(path.to_str().unwrap(), policy()).unwrap();
        // Several chunks, handed to the thread when full and in between (written here when
        // the thread is idle, else queued): the lines stay in order.
        let pad = "x".repeat(1000);
        for i in 0..300 {
            w.write_line(format!("{i} {pad}").as_bytes()).unwrap();
            if i % 7 == 0 {
                w.hand_over();
            }
        }
        w.idle().unwrap();
        w.write_line(b"last").unwrap();
        drop(w);
        let text = fs::read_to_string(&path).unwrap();
        let numbers: Vec<usize> =
            text.lines().filter_map(|l| l.split(' ').next()?.parse().ok()).collect();
        assert_eq!(numbers, (0..300).collect::<Vec<_>>());
        assert!(text.ends_with("last\n"));

        let mut full = JsonWriter::new("/dev/full", policy()).unwrap();
        full.write_line(b"{}").unwrap();
        let e = full.flush().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
        assert!(e.to_string().ends_with("(events lost: 1)"), "{e}");
        assert!(full.flush().is_ok(), "each failure is reported once");
    }
}
