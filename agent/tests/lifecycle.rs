//! Host BPF tests: the real lifecycle programs in this machine's kernel, checked through
//! the JSON the real agent exports.
mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine;
use common::{is, kind, marker, with_arg, Agent};
use serde_json::Value;

fn decode_exec_id(id: &Value) -> String {
    let raw = base64::engine::general_purpose::STANDARD.decode(id.as_str().unwrap()).unwrap();
    String::from_utf8(raw).unwrap()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn shell_scenario_exec_and_exit_events() {
    let mut agent = Agent::start(&[]);
    let cwd = std::env::current_dir().unwrap();
    let sh = Command::new("/bin/sh")
        .args(["-c", "cd /tmp && /bin/echo \"a b\" c; exit 3"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let sh_pid = sh.id();
    let status = sh.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(3));

    let sh_exit = agent.wait_for("sh exit", |e| is(e, "process_exit", sh_pid));
    let events = agent.events();
    let sh_exec = events.iter().find(|e| is(e, "process_exec", sh_pid)).expect("sh exec");
    let (_, sh_exec) = kind(sh_exec);
    let p = &sh_exec["process"];
    assert_eq!(p["binary"], "/bin/sh");
    assert_eq!(p["arguments"], "-c \"cd /tmp && /bin/echo \"a b\" c; exit 3\"");
    assert_eq!(p["cwd"], cwd.to_str().unwrap());
    assert_eq!(p["flags"], "execve clone");
    assert_eq!(p["pid"], sh_pid);
    assert_eq!(p["tid"], sh_pid);
    assert_eq!(p["uid"], 0);
    assert!(p["auid"].is_u64());
    assert!(p["start_time"].as_str().unwrap().ends_with('Z'));
    let id = decode_exec_id(&p["exec_id"]);
    let parts: Vec<&str> = id.rsplitn(3, ':').collect();
    assert_eq!(parts[0], sh_pid.to_string(), "exec_id {id} ends with the pid");
    assert!(parts[1].parse::<u64>().unwrap() > 0, "exec_id {id} holds a ktime");
    assert_eq!(parts[2], hostname());
    assert!(p["cap"]["effective"].as_array().unwrap().iter().any(|c| c == "CAP_SYS_ADMIN"));
    assert!(p["ns"]["mnt"]["inum"].as_u64().unwrap() > 0);
    // Its parent is this test process, read from /proc or seen at its own exec.
    let parent = &sh_exec["parent"];
    assert_eq!(parent["pid"], std::process::id());
    assert_eq!(p["parent_exec_id"], parent["exec_id"]);
    assert_eq!(
        parent["binary"],
        std::env::current_exe().unwrap().to_str().unwrap(),
        "parent binary"
    );

    let echo_exec = events
        .iter()
        .map(kind)
        .find(|(k, b)| *k == "process_exec" && b["parent"]["exec_id"] == p["exec_id"])
        .map(|(_, b)| b)
        .expect("echo exec, child of sh");
    let echo = &echo_exec["process"];
    assert_eq!(echo["binary"], "/bin/echo");
    assert_eq!(echo["arguments"], "\"a b\" c");
    assert_eq!(echo["cwd"], "/tmp");
    assert_eq!(echo["flags"], "execve clone");
    assert_eq!(echo["parent_exec_id"], p["exec_id"]);
    assert_eq!(echo_exec["parent"]["binary"], "/bin/sh");
    assert_ne!(echo["exec_id"], p["exec_id"]);

    let echo_pid = echo["pid"].as_u64().unwrap() as u32;
    let echo_exit = events.iter().find(|e| is(e, "process_exit", echo_pid)).expect("echo exit");
    let (_, echo_exit) = kind(echo_exit);
    assert_eq!(echo_exit["process"]["exec_id"], echo["exec_id"]);
    assert_eq!(echo_exit["status"], Value::Null, "status 0 is omitted, as in protojson");
    assert_eq!(echo_exit["signal"], Value::Null);
    assert_eq!(echo_exit["parent"]["exec_id"], p["exec_id"]);

    let (_, sh_exit) = kind(&sh_exit);
    assert_eq!(sh_exit["status"], 3);
    assert_eq!(sh_exit["signal"], Value::Null);
    assert_eq!(sh_exit["process"]["exec_id"], p["exec_id"]);
    assert!(sh_exit["time"].is_string());

    let stats = agent.stop();
    assert_eq!(stats["lost"], 0, "{stats:?}");
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn killed_process_exits_with_sigkill() {
    let mut agent = Agent::start(&[]);
    let mut child = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let pid = child.id();
    agent.wait_for("sleep exec", |e| is(e, "process_exec", pid));
    child.kill().unwrap();
    child.wait().unwrap();
    let exit = agent.wait_for("sleep exit", |e| is(e, "process_exit", pid));
    let (_, exit) = kind(&exit);
    assert_eq!(exit["signal"], "SIGKILL");
    assert_eq!(exit["status"], Value::Null);
    assert_eq!(exit["process"]["binary"], "/bin/sleep", "the path given to execve");
    agent.stop();
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn long_arguments_and_paths_are_truncated_and_flagged() {
    let mut agent = Agent::start(&[]);
    let m = marker("long");
    // 3,000 arguments of 10 bytes are far over the 4 KiB the kernel side copies.
    let args: Vec<String> = (0..3000).map(|i| format!("{i:09}")).collect();
    let status = Command::new("/bin/true").arg(&m).args(&args).status().unwrap();
    assert!(status.success());
    let e = agent.wait_for("long-args exec", |e| with_arg(e, "process_exec", &m));
    let p = &kind(&e).1["process"];
    let shown = p["arguments"].as_str().unwrap();
    assert!(p["flags"].as_str().unwrap().split(' ').any(|f| f == "truncArgs"), "{}", p["flags"]);
    let full = format!("{m} {}", args.join(" "));
    assert!(full.starts_with(shown), "a truncated list is a prefix of the real one");
    assert!(shown.len() > 3000 && shown.len() < 4096, "{} bytes shown", shown.len());

    // A binary behind a path longer than the 1 KiB kept for file names.
    let mut dir = agent.dir.path().to_path_buf();
    for i in 0..6 {
        dir.push(format!("{i}{}", "d".repeat(200)));
    }
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("true-copy");
    std::fs::copy("/bin/true", &bin).unwrap();
    let m2 = marker("longpath");
    assert!(Command::new(&bin).arg(&m2).status().unwrap().success());
    let e = agent.wait_for("long-path exec", |e| with_arg(e, "process_exec", &m2));
    let p = &kind(&e).1["process"];
    let binary = p["binary"].as_str().unwrap();
    assert!(p["flags"].as_str().unwrap().split(' ').any(|f| f == "truncFilename"));
    assert!(bin.to_str().unwrap().starts_with(binary), "kept the start of the path");
    assert_eq!(binary.len(), 1023);
    assert_eq!(p["arguments"], m2.as_str(), "arguments are unaffected");
    agent.stop();
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn processes_started_before_the_agent_are_parents() {
    // A shell that waits for commands on stdin, started before the agent.
    let mut sh = Command::new("/bin/sh").stdin(Stdio::piped()).spawn().unwrap();
    let sh_pid = sh.id();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut agent = Agent::start(&[]);
    let m = marker("procfs");
    let stdin = sh.stdin.as_mut().unwrap();
    writeln!(stdin, "/bin/true {m}; exit 0").unwrap();
    sh.wait().unwrap();
    let e = agent.wait_for("child of a pre-existing shell", |e| with_arg(e, "process_exec", &m));
    let (_, body) = kind(&e);
    assert_eq!(body["parent"]["pid"], sh_pid);
    assert_eq!(body["parent"]["binary"], "/usr/bin/dash");
    assert_eq!(body["parent"]["flags"], "procFS");
    assert_eq!(body["process"]["parent_exec_id"], body["parent"]["exec_id"]);
    let exit = agent.wait_for("pre-existing shell exit", |e| is(e, "process_exit", sh_pid));
    assert_eq!(kind(&exit).1["process"]["flags"], "procFS");
    agent.stop();
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn export_rotates_without_losing_or_splitting_lines() {
    let mut agent =
        Agent::start(&["--export-file-max-size-mb", "1", "--export-file-max-backups", "100"]);
    let m = marker("rotate");
    let runs = 800;
    for i in 0..runs {
        let status = Command::new("/bin/true").arg(format!("{m}-{i}")).status().unwrap();
        assert!(status.success());
    }
    let last = format!("{m}-{}", runs - 1);
    agent.wait_for("last exit", |e| with_arg(e, "process_exit", &last));
    let stats = agent.stop();
    // read_lines parses every line of every file: a split line would fail here.
    let files = agent.export_files();
    let mut ours = std::collections::HashSet::new();
    for file in &files {
        let size = std::fs::metadata(file).unwrap().len();
        assert!(size <= 1 << 20, "{file:?} is {size} bytes");
        for e in common::read_lines(file) {
            let (k, b) = kind(&e);
            if let Some(a) = b["process"]["arguments"].as_str().filter(|a| a.starts_with(&m)) {
                assert!(ours.insert((k.to_string(), a.to_string())), "duplicate {k} {a}");
            }
        }
    }
    let files = files.len();
    assert!(files >= 3, "only {files} files: no rotation happened");
    assert_eq!(ours.len(), runs * 2, "every exec and exit of our {runs} processes");
    assert_eq!(stats["lost"], 0, "{stats:?}");
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn overflow_is_counted_by_cause_and_reported() {
    // One page of ring buffer, and the agent stopped while the burst runs: the kernel must
    // refuse most records, and count them.
    let mut agent = Agent::start(&["--rb-size", "4096", "--event-queue-size", "1"]);
    let m = marker("burst");
    let runs = 400;
    agent.signal(libc::SIGSTOP);
    let children: Vec<_> = (0..runs)
        .map(|i| Command::new("/bin/true").arg(format!("{m}-{i}")).spawn().unwrap())
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    agent.signal(libc::SIGCONT);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let exported = agent
        .events()
        .iter()
        .filter(|e| with_arg(e, "process_exec", &m) || with_arg(e, "process_exit", &m))
        .count() as u64;
    let stats = agent.stop();
    let by_cause = stats["lost_ringbuf_exec"]
        + stats["lost_ringbuf_exit"]
        + stats["lost_ringbuf_clone"]
        + stats["lost_queue_full"]
        + stats["lost_decode_error"];
    assert!(stats["lost"] > 0, "a burst this size must overflow: {stats:?}");
    assert_eq!(stats["lost"], by_cause, "the total is the sum of the causes");
    // Whatever did not reach the export was counted: nothing vanished silently. A lost
    // exec hides its process's exit too (the exit can no longer be named), so it accounts
    // for two of the marker's events; a lost clone hides none of them.
    assert!(exported < 2 * runs as u64, "{exported} of {} exported", 2 * runs);
    let explained = 2 * stats["lost_ringbuf_exec"]
        + stats["lost_ringbuf_exit"]
        + 2 * stats["lost_queue_full"]
        + stats["lost_decode_error"];
    assert!(exported + explained >= 2 * runs as u64, "{exported} exported, {stats:?}");
    assert_eq!(stats["lost_decode_error"], 0);
    assert!(agent.log_text().contains("events lost so far"), "a log line reports the loss");
}
