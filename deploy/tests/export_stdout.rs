//! The export-stdout container for real: its exact command from the DaemonSet, run by
//! busybox (the image's tail), follows the file the agent's own JSON writer produces
//! across rotations, and piped into `tetra getevents -o compact` it prints exactly what
//! the compact printer prints for the same events, as
//! `kubectl logs ds/tetragon -c export-stdout -f | tetra getevents -o compact` would.
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tetra_agent::export::json::{JsonWriter, RotationPolicy};
use tetra_deploy::{deploy_dir, find, read_documents};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Kills busybox tail if the test fails before it does.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn backups(path: &Path) -> usize {
    (1..10)
        .filter(|n| Path::new(&format!("{}.{n}", path.display())).exists())
        .count()
}

#[test]
fn sidecar_command_follows_rotations_into_tetra_compact() {
    let Some(events_dir) =
        tetra_corpus::dir_for("sidecar_command_follows_rotations_into_tetra_compact", tetra_corpus::Part::Events)
    else {
        return;
    };
    let docs = read_documents(&deploy_dir().join("manifests/tetra.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let ds = find(&docs, "DaemonSet", "tetragon").expect("DaemonSet");
    let sidecar = ds["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == "export-stdout")
        .expect("export-stdout container");
    let mut command: Vec<String> = sidecar["command"]
        .as_array()
        .expect("command")
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect();
    let in_pod = command.last().cloned().expect("a file argument");
    assert_eq!(in_pod, "/var/run/tetragon/tetragon.log");

    let dir = std::env::temp_dir().join(format!("tetra-export-stdout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let file = dir.join("tetragon.log");
    *command.last_mut().expect("file") = file.display().to_string();

    let tetra =
        tetra_tests::vm::cargo_build_binary("tetra-cli", "tetra").unwrap_or_else(|e| panic!("{e}"));
    // The image's tail is busybox's (deploy/host/deps.sh --tests installs busybox-static).
    let mut tail = Killed(
        Command::new("/bin/busybox")
            .args(&command)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting busybox tail"),
    );
    let mut compact = Command::new(&tetra)
        .args(["getevents", "-o", "compact"])
        .stdin(tail.0.stdout.take().expect("tail stdout"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting tetra getevents");
    // As in a new pod, the file does not exist yet: wait until tail says so.
    let mut stderr = BufReader::new(tail.0.stderr.take().expect("tail stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("tail stderr");
    assert!(line.contains("No such file"), "{line}");

    let events = read(&events_dir.join("all-events.jsonl"));
    let lines: Vec<&str> = events.lines().collect();
    let policy = RotationPolicy {
        max_bytes: 20_000,
        max_backups: 9,
        mode: 0o600,
    };
    let mut writer = JsonWriter::new(&file.display().to_string(), policy).expect("export file");
    // busybox polls once a second: let it see each new file (this one, then each rotation)
    // before the next rotation renames it away.
    let tail_poll = Duration::from_millis(1300);
    std::thread::sleep(tail_poll);
    for l in &lines {
        let before = backups(&file);
        writer.write_line(l.as_bytes()).expect("write");
        writer.flush().expect("flush");
        if backups(&file) != before {
            std::thread::sleep(tail_poll);
        }
    }
    let rotations = backups(&file);
    assert!(rotations >= 3, "only {rotations} rotations");
    std::thread::sleep(Duration::from_millis(2500));
    drop(tail);
    let mut out = String::new();
    compact
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("tetra output");
    let status = compact.wait().expect("tetra exit");
    assert!(status.success(), "tetra getevents: {status}");
    let _ = std::fs::remove_dir_all(&dir);

    let golden = read(&events_dir.join("all-events.compact.txt"));
    assert_eq!(out.lines().count(), lines.len());
    assert_eq!(
        out, golden,
        "compact output through the sidecar differs from the golden file"
    );
    // Every exported line is a JSON event.
    assert!(lines
        .iter()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
}
