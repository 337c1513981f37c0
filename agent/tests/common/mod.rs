//! Runs the real `tetrad` binary for host tests and reads what it exported.
#![allow(dead_code)] // each test file uses its own part of the harness

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod policies;

pub struct Agent {
    child: Child,
    pub dir: tempfile::TempDir,
    pub export: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    /// Starts tetrad exporting to a fresh file and waits until it is attached.
    pub fn start(extra: &[&str]) -> Agent {
        Agent::start_in(&[], extra)
    }

    /// As [`Agent::start`], run by `wrapper` (a command that ends by exec'ing its arguments,
    /// e.g. `prlimit ... --`), so the agent keeps the wrapper's pid, limits and mounts.
    pub fn start_in(wrapper: &[&str], extra: &[&str]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let export = dir.path().join("events.json");
        // Tests run agents side by side: no shared default port or info file unless asked.
        let mut defaults: Vec<String> = Vec::new();
        if !extra.iter().any(|a| a.starts_with("--server-address")) {
            defaults.push("--server-address=".into());
        }
        if !extra.iter().any(|a| a.starts_with("--run-dir")) {
            defaults.push(format!("--run-dir={}", dir.path().join("run").display()));
        }
        let tetrad = env!("CARGO_BIN_EXE_tetrad");
        let mut command = match wrapper.split_first() {
            None => Command::new(tetrad),
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(tetrad);
                c
            }
        };
        let mut child = command
            .arg("--export-filename")
            .arg(&export)
            .args(&defaults)
            .args(extra)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tetrad");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let agent = Agent { child, dir, export, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !agent.log_contains("tetrad ready") {
            assert!(Instant::now() < deadline, "tetrad did not start:\n{}", agent.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    /// The agent's pid (where a wrapper started it, the wrapper exec'd it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the agent (SIGSTOP/SIGCONT to hold its reader still).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill() only sends a signal to our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn log_contains(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    /// Waits until the agent logged a line containing `needle`.
    pub fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.log_contains(needle) {
            assert!(Instant::now() < deadline, "no log line {needle:?}:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The export file and its rotated backups, oldest first (FILE.N ... FILE.1, FILE).
    pub fn export_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = (1..1000)
            .map(|n| PathBuf::from(format!("{}.{n}", self.export.display())))
            .take_while(|p| p.exists())
            .collect();
        files.reverse();
        files.push(self.export.clone());
        files
    }

    /// Events exported so far, oldest first.
    pub fn events(&self) -> Vec<Value> {
        self.export_files().iter().flat_map(|f| read_lines(f)).collect()
    }

    /// Waits until `pred` holds for some exported event and returns it.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.events().into_iter().find(|e| pred(e)) {
                return e;
            }
            assert!(Instant::now() < deadline, "no event {what}; agent log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the agent with SIGINT and returns its final counters.
    pub fn stop(&mut self) -> HashMap<String, u64> {
        // SAFETY: kill() only sends a signal to our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(status.success(), "tetrad exited with {status}:\n{}", self.log_text());
        let log = self.log_text();
        let line = log
            .lines()
            .find(|l| l.contains("final stats:"))
            .unwrap_or_else(|| panic!("no final stats in:\n{log}"));
        line.split("final stats:")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
            .collect()
    }
}

impl Drop for Agent {
    /// A failed test must not leave its agent running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Every complete line of an export file, each parsed (a broken line fails the test).
/// A last line without its newline is still being written and is left out.
pub fn read_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line in {path:?}: {e}: {l}"))
        })
        .collect()
}

/// The event's kind ("process_exec", ...) and body.
pub fn kind(e: &Value) -> (&str, &Value) {
    e.as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.starts_with("process_") || *k == "rate_limit_info"))
        .map(|(k, v)| (k.as_str(), v))
        .unwrap_or(("", &Value::Null))
}

pub fn is(e: &Value, want_kind: &str, pid: u32) -> bool {
    let (k, body) = kind(e);
    k == want_kind && body["process"]["pid"] == pid
}

pub fn with_arg(e: &Value, want_kind: &str, needle: &str) -> bool {
    let (k, body) = kind(e);
    k == want_kind && body["process"]["arguments"].as_str().is_some_and(|a| a.contains(needle))
}

/// A marker unique to this test run, for finding our own processes among the host's.
pub fn marker(tag: &str) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    format!("tetra-{tag}-{}-{}", std::process::id(), t.as_nanos())
}
