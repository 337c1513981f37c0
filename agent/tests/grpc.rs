//! gRPC round trips against the real agent: TCP and unix socket, our own client and the
//! `tetra` binary.
mod common;
mod rpc;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{marker, Agent};
use rpc::{args_contain, read_until};
use tetra_proto::tetragon::{
    get_events_response::Event, FieldFilter, FieldFilterAction, Filter, GetEventsRequest,
    GetEventsResponse, GetHealthStatusRequest, GetInfoRequest, GetVersionRequest,
    HealthStatusResult,
};
use tetra_proto::FieldMask;

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}

/// The `tetra` binary of this workspace, built once into the same target directory.
/// The child's stdout, line by line, read on a thread so a test can wait with a timeout.
fn stdout_lines(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn tetra_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // <target>/<profile>/deps/grpc-<hash>
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
        let target = profile_dir.parent().unwrap().to_path_buf();
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "-q", "-p", "tetra-cli", "--bin", "tetra"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building tetra failed");
        profile_dir.join("tetra")
    })
    .clone()
}

fn tetra(address: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(tetra_bin())
        .args(args)
        .arg("--server-address")
        .arg(address)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn tcp_get_events_filters_health_version_info() {
    let run_dir = tempfile::tempdir().unwrap();
    let run_arg = format!("--run-dir={}", run_dir.path().display());
    let mut agent = Agent::start(&["--server-address=127.0.0.1:0", &run_arg]);
    let address = rpc::info(run_dir.path(), "server_address");
    assert!(address.starts_with("127.0.0.1:") && !address.ends_with(":0"), "{address}");
    let mark = marker("grpc-tcp");
    let other = marker("grpc-other");

    rpc::runtime().block_on(async {
        let mut client = rpc::connect(&address).await;
        let health =
            client.get_health(GetHealthStatusRequest::default()).await.unwrap().into_inner();
        assert_eq!(health.health_status.len(), 1);
        assert_eq!(health.health_status[0].status, HealthStatusResult::HealthStatusRunning as i32);
        let version = client.get_version(GetVersionRequest {}).await.unwrap().into_inner();
        assert_eq!(version.version, env!("CARGO_PKG_VERSION"));
        let info = client.get_info(GetInfoRequest {}).await.unwrap().into_inner();
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        let probes: std::collections::BTreeMap<&str, Option<bool>> =
            info.probes.iter().map(|p| (p.name.as_str(), p.enabled)).collect();
        let kprobes = std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
        assert_eq!(probes.len(), 7, "{probes:?}");
        assert_eq!(probes["HasKprobes"], Some(kprobes));
        assert_eq!(probes["HasRingBuffer"], Some(true));
        assert_eq!(probes["HasSignalHelper"], Some(true));
        // The local unix socket that comes with a TCP server.
        let socket = run_dir.path().join("tetragon.sock");
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", socket.display());
        let mut local = rpc::connect(&format!("unix://{}", socket.display())).await;
        let version = local.get_version(GetVersionRequest {}).await.unwrap().into_inner();
        assert_eq!(version.version, env!("CARGO_PKG_VERSION"));

        let req = GetEventsRequest {
            allow_list: vec![Filter { arguments_regex: vec![mark.clone()], ..Default::default() }],
            deny_list: vec![Filter { binary_regex: vec!["echo$".into()], ..Default::default() }],
            field_filters: vec![FieldFilter {
                fields: Some(FieldMask::new(
                    ["process.binary", "process.arguments", "process.pid"].map(String::from),
                )),
                action: FieldFilterAction::Include as i32,
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut stream = client.get_events(req).await.unwrap().into_inner();
        // Excluded: another marker, and our marker run by a denied binary.
        rpc::run("/bin/true", &[&other]);
        rpc::run("/bin/echo", &[&mark]);
        rpc::run("/bin/true", &[&mark]);
        let seen = read_until(&mut stream, 20, "exit of /bin/true with the marker", |e| {
            matches!(e.event, Some(Event::ProcessExit(_))) && args_contain(e, &mark)
        })
        .await;
        for e in &seen {
            let p = e.process().unwrap();
            assert!(p.arguments.contains(&mark), "filtered out: {e:?}");
            assert_eq!(p.binary, "/bin/true");
            assert!(p.pid.is_some());
            assert!(p.exec_id.is_empty() && p.cwd.is_empty(), "field filter keeps 3 fields: {p:?}");
            assert!(e.parent().is_none(), "parent excluded by the field filter");
        }
        assert!(
            seen.iter().any(|e| matches!(e.event, Some(Event::ProcessExec(_)))),
            "exec of the marker process: {seen:?}"
        );

        // A bad filter is refused with a message naming it.
        let bad = GetEventsRequest {
            allow_list: vec![Filter { binary_regex: vec!["(".into()], ..Default::default() }],
            ..Default::default()
        };
        let err = client.get_events(bad).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    });
    let stats = agent.stop();
    assert_eq!(stats["grpc_clients_total"], 1, "{stats:?}");
    assert!(!run_dir.path().join("tetragon-info.json").exists(), "info file removed at exit");
    assert!(!run_dir.path().join("tetragon.sock").exists(), "socket removed at exit");
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn unix_socket_and_the_tetra_cli() {
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("sock/tetragon.sock");
    let server_arg = format!("--server-address=unix://{}", socket.display());
    let run_arg = format!("--run-dir={}", run_dir.path().display());
    let mut agent = Agent::start(&[&server_arg, &run_arg, "--metrics-server=127.0.0.1:0"]);
    let metrics = rpc::info(run_dir.path(), "metrics_address");
    let loaded = |state: &str| {
        let (_, text) = rpc::http_get(&metrics, "/metrics");
        rpc::sample(&text, &format!("tetragon_tracingpolicy_loaded{{state=\"{state}\"}}"))
            .unwrap()
    };
    let address = rpc::info(run_dir.path(), "server_address");
    assert_eq!(address, format!("unix://{}", socket.display()));
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "socket mode");

    // Our own client over the socket.
    let mark = marker("grpc-unix");
    rpc::runtime().block_on(async {
        let mut client = rpc::connect(&address).await;
        let version = client.get_version(GetVersionRequest {}).await.unwrap().into_inner();
        assert_eq!(version.version, env!("CARGO_PKG_VERSION"));
        let req = GetEventsRequest {
            allow_list: vec![Filter { arguments_regex: vec![mark.clone()], ..Default::default() }],
            ..Default::default()
        };
        let mut stream = client.get_events(req).await.unwrap().into_inner();
        rpc::run("/bin/true", &[&mark]);
        read_until(&mut stream, 20, "marker exec over the unix socket", |e| {
            matches!(e.event, Some(Event::ProcessExec(_))) && args_contain(e, &mark)
        })
        .await;
    });

    // `tetra getevents -o compact`, finding the agent through the info file.
    let mark = marker("tetra-compact");
    let info_file = run_dir.path().join("tetragon-info.json");
    let mut child = Command::new(tetra_bin())
        .args(["getevents", "-o", "compact", "--color", "never", "--process", "/bin/true"])
        .env("TETRA_INFO_FILE", &info_file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);
    let want = format!("🚀 process {} /bin/true {mark}", hostname());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    // The compact line, without the capabilities trailer root processes get.
    let shows = |lines: &[String]| {
        lines.iter().any(|l| l.split("🛑").next().unwrap_or("").trim_end() == want)
    };
    // tetra subscribes asynchronously: run the marker until its line shows up.
    while !shows(&lines) {
        assert!(
            Instant::now() < deadline,
            "no {want:?} in {lines:?}\nagent log:\n{}",
            agent.log_text()
        );
        rpc::run("/bin/true", &[&mark]);
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
        }
    }
    assert!(lines.iter().all(|l| l.contains("/bin/true")), "--process filter: {lines:?}");
    let _ = child.kill();
    let _ = child.wait();

    // info: the kernel features the agent probed.
    let (ok, out, err) = tetra(&address, &["info"]);
    assert!(ok, "{out}{err}");
    let info: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    let ringbuf = info["probes"].as_array().unwrap().iter().find(|p| p["Name"] == "HasRingBuffer");
    assert_eq!(ringbuf.map(|p| p["Enabled"].clone()), Some(serde_json::Value::Bool(true)), "{out}");

    // status / version
    let (ok, out, err) = tetra(&address, &["status"]);
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "Health Status: running");
    let (ok, out, err) = tetra(&address, &["version"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("Server version: {}", env!("CARGO_PKG_VERSION"))), "{out}");

    // tracingpolicy add / list / delete
    let policy = run_dir.path().join("writes.yaml");
    std::fs::write(
        &policy,
        "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: grpc-writes\nspec:\n  kprobes:\n  - call: sys_write\n    syscall: true\n",
    )
    .unwrap();
    let policy_path = policy.to_str().unwrap();
    // This kernel has no kprobes: the policy is refused with that reason and kept in its
    // error state, and enabling it fails the same way.
    let (ok, _, err) = tetra(&address, &["tracingpolicy", "add", policy_path]);
    assert!(!ok && err.contains("this kernel has no kprobes"), "{err}");
    let (ok, _, err) = tetra(&address, &["tracingpolicy", "add", policy_path]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, out, err) = tetra(&address, &["tracingpolicy", "list"]);
    assert!(ok, "{err}");
    let row = out.lines().find(|l| l.contains("grpc-writes")).unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("load_error") && row.contains("grpc"), "{out}");
    assert!(!out.contains("enabled"), "never pretends to be enabled: {out}");
    assert!(out.contains("this kernel has no kprobes"), "{out}");
    assert_eq!(loaded("load_error"), 1.0);
    let (ok, _, err) = tetra(&address, &["tracingpolicy", "enable", "grpc-writes"]);
    assert!(!ok && err.contains("this kernel has no kprobes"), "{err}");
    let (ok, out, err) = tetra(&address, &["tracingpolicy", "list", "-o", "json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["policies"][0]["state"], "TP_STATE_LOAD_ERROR", "{out}");
    let (ok, out, err) = tetra(&address, &["tracingpolicy", "delete", "grpc-writes"]);
    assert!(ok, "{out}{err}");
    let (_, out, _) = tetra(&address, &["tracingpolicy", "list"]);
    assert!(!out.contains("grpc-writes"), "{out}");
    assert_eq!(loaded("load_error"), 0.0);

    // A tracepoint policy attaches here; disable detaches it, enable attaches it again.
    let tp = run_dir.path().join("tp.yaml");
    std::fs::write(
        &tp,
        "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: grpc-opens\nspec:\n  tracepoints:\n  - subsystem: syscalls\n    event: sys_enter_openat\n    args: [{index: 6, type: string}]\n    selectors:\n    - matchArgs: [{index: 0, operator: Postfix, values: [\"/no-such-tetra-file\"]}]\n",
    )
    .unwrap();
    let (ok, out, err) = tetra(&address, &["tracingpolicy", "add", tp.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert_eq!(loaded("enabled"), 1.0);
    let (ok, out, err) = tetra(&address, &["tracingpolicy", "disable", "grpc-opens"]);
    assert!(ok, "{out}{err}");
    assert_eq!((loaded("enabled"), loaded("disabled")), (0.0, 1.0));
    let (ok, out, err) = tetra(&address, &["tracingpolicy", "enable", "grpc-opens"]);
    assert!(ok, "{out}{err}");
    assert_eq!(loaded("enabled"), 1.0);
    // Three matching opens: the kernel's counters show three posts of selector 0.
    for i in 0..3 {
        let missing = format!("/nonexistent-{i}/no-such-tetra-file");
        assert!(std::fs::File::open(&missing).is_err());
    }
    let (ok, out, err) = tetra(&address, &["tracingpolicy", "list", "-o", "json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let p = v["policies"].as_array().unwrap().iter().find(|p| p["name"] == "grpc-opens").unwrap();
    assert_eq!(p["sensors"], serde_json::json!(["generic_tracepoint"]), "{p:#}");
    assert_eq!(p["hook_statuses"][0]["state"], "STATUS_LOADED", "{p:#}");
    let counters = &p["stats"]["action_counters"];
    assert_eq!(counters["post"], "3", "{p:#}");
    assert!(counters.get("signal").is_none(), "no signal sent: {p:#}");
    let per_selector = &p["stats"]["selector_action_counters"];
    assert_eq!(per_selector.as_array().map(Vec::len), Some(1), "{p:#}");
    assert_eq!(per_selector[0]["selector_index"], 0, "{p:#}");
    assert!(per_selector[0]["hook"].as_str().unwrap().starts_with("spec.tracepoints[0]"), "{p:#}");
    let (ok, out, _) = tetra(&address, &["tracingpolicy", "list"]);
    let row = out.lines().find(|l| l.contains("grpc-opens")).unwrap_or_else(|| panic!("{out}"));
    assert!(ok && row.split_whitespace().any(|w| w == "3"), "NPOST column: {out}");
    let (ok, out, err) = tetra(&address, &["tracingpolicy", "delete", "grpc-opens"]);
    assert!(ok, "{out}{err}");
    assert_eq!(loaded("enabled"), 0.0);

    // An invalid policy: every error comes back; it is listed as refused, with them.
    std::fs::write(
        &policy,
        "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: bad\nspec:\n  kprobes:\n  - call: sys_write\n    args:\n    - index: 9\n      type: nosuchtype\n",
    )
    .unwrap();
    let (ok, _, err) = tetra(&address, &["tracingpolicy", "add", policy_path]);
    assert!(!ok, "{err}");
    assert!(err.contains("index") && err.contains("nosuchtype"), "both errors reported: {err}");
    let (_, out, _) = tetra(&address, &["tracingpolicy", "list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "header, row, error: {out}");
    assert!(lines[1].contains("bad") && lines[1].split_whitespace().any(|w| w == "error"), "{out}");
    assert!(lines[2].trim().starts_with("error: invalid tracing policy: ") && lines[2].contains("nosuchtype"), "{out}");
    assert_eq!(loaded("error"), 1.0);
    let (ok, out, err) = tetra(&address, &["tracingpolicy", "delete", "bad"]);
    assert!(ok, "{out}{err}");
    assert_eq!(loaded("error"), 0.0);

    agent.stop();
    assert!(!socket.exists(), "socket removed at exit");
}

/// `tetra getevents --reconnect` started before the agent waits for it, and follows it
/// across a restart on the same socket.
#[test]
#[ignore = "needs root: runs tetrad (BPF)"]
fn getevents_reconnects_across_agent_restarts() {
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("tetragon.sock");
    let address = format!("unix://{}", socket.display());
    let server_arg = format!("--server-address={address}");
    let run_arg = format!("--run-dir={}", run_dir.path().display());
    let mut child = Command::new(tetra_bin())
        .args(["--server-address", &address, "getevents", "-o", "compact", "--color", "never"])
        .args(["--process", "/bin/true", "--reconnect", "--reconnect-wait", "200ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);
    // No agent yet: tetra keeps trying instead of exiting.
    std::thread::sleep(Duration::from_millis(700));
    assert!(child.try_wait().unwrap().is_none(), "tetra exited while waiting for the agent");
    for round in ["first", "second"] {
        let agent = Agent::start(&[&server_arg, &run_arg]);
        let mark = marker(&format!("reconnect-{round}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut lines = Vec::new();
        while !lines.iter().any(|l: &String| l.contains(&mark)) {
            assert!(Instant::now() < deadline, "{round} agent: no line for {mark} in {lines:?}\nagent log:\n{}", agent.log_text());
            rpc::run("/bin/true", &[&mark]);
            while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                lines.push(line);
            }
        }
        drop(agent);
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("reconnecting in 200ms"), "{err}");
}

/// A tracepoint event's process and parent are held apart from the event inside the agent
/// (shared with the process cache) until a consumer needs them: the gRPC stream and the
/// JSON export must still show the same whole event, byte for byte once encoded.
#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn tracepoint_events_are_the_same_over_grpc_and_in_the_json_export() {
    let bin_dir = tempfile::tempdir().unwrap();
    let cat = bin_dir.path().join(marker("cat"));
    std::fs::copy("/bin/cat", &cat).unwrap();
    let input = bin_dir.path().join("input");
    std::fs::write(&input, "x").unwrap();
    let name = "grpc-json-reads";
    let policy = bin_dir.path().join("policy.yaml");
    std::fs::write(&policy, common::policies::read_policy(name, &cat)).unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let run_arg = format!("--run-dir={}", run_dir.path().display());
    let policy_arg = format!("--tracing-policy={}", policy.display());
    let mut agent = Agent::start(&["--server-address=127.0.0.1:0", &run_arg, &policy_arg]);
    agent.wait_log(&format!("tracing policy \"{name}\" enabled"));
    let address = rpc::info(run_dir.path(), "server_address");
    let binary = cat.display().to_string();

    let streamed = rpc::runtime().block_on(async {
        let mut client = rpc::connect(&address).await;
        let req = GetEventsRequest {
            allow_list: vec![Filter { binary_regex: vec![binary.clone()], ..Default::default() }],
            ..Default::default()
        };
        let mut stream = client.get_events(req).await.unwrap().into_inner();
        let reads = |e: &GetEventsResponse| matches!(e.event, Some(Event::ProcessTracepoint(_)));
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        // The client subscribes asynchronously: run cat until its reads come through.
        while !seen.iter().any(reads) {
            assert!(Instant::now() < deadline, "no read of {binary} over gRPC in {seen:?}");
            rpc::run(&binary, &[input.to_str().unwrap()]);
            let wait = Duration::from_millis(500);
            while let Ok(Ok(Some(e))) = tokio::time::timeout(wait, stream.message()).await {
                seen.push(e);
            }
        }
        seen.into_iter().filter(reads).collect::<Vec<_>>()
    });
    assert!(!streamed.is_empty(), "no tracepoint event over gRPC:\n{}", agent.log_text());
    let stats = agent.stop();
    assert_eq!(stats["lost"], 0, "{stats:?}");
    let exported = std::fs::read_to_string(&agent.export).unwrap();
    let lines: std::collections::HashSet<&str> = exported.lines().collect();
    for event in &streamed {
        let process = event.process().expect("the event's process");
        assert_eq!(process.binary, binary);
        assert!(event.parent().is_some_and(|p| !p.exec_id.is_empty()), "{event:?}");
        let line = tetra_proto::json::to_line(event);
        assert!(lines.contains(line.as_str()), "not in the JSON export: {line}");
    }
}
