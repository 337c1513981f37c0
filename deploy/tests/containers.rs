//! The agent image in real container runtimes on this machine's kernel: podman (runc, the
//! cgroupfs manager) and containerd + runc driven by `ctr`. Each run loads the archives of
//! deploy/images/build.sh as a node would (`podman load`, `ctr -n k8s.io images import`),
//! starts the agent as the chart's DaemonSet does (privileged, host pid namespace, the
//! chart's host mounts, the flags of the rendered ConfigMap), then checks through `tetra`
//! inside the agent's container:
//! - a host process's exec event has its host pid and binary;
//! - a tracepoint Sigkill policy added with `tetra tracingpolicy add` kills a process in a
//!   second container (the runtime sees exit status 137, the agent a SIGKILL exit);
//! - that container's events carry `process.docker`, the runtime's container id;
//! - (podman) the chart's export-stdout container, run from the same image with its command,
//!   mounts and security context from the DaemonSet, prints the agent's export file:
//!   `podman logs` of it piped through `tetra getevents -o compact` shows the victim's exec
//!   and its SIGKILL exit, as `kubectl logs -c export-stdout | tetra getevents -o compact`.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tetra_deploy::images::{self, on_path};
use tetra_deploy::{deploy_dir, find, read_documents, run};

/// Host mounts of a container: (host path, container path, read-only).
type Mounts = Vec<(String, String, bool)>;

/// The chart's DaemonSet container arguments with the ConfigMap's values substituted, and
/// its host mounts; and its export-stdout container.
struct ChartAgent {
    args: Vec<String>,
    mounts: Mounts,
    sidecar: ChartSidecar,
}

/// The export-stdout container: its command (it has no args), its mounts, and whether its
/// root file system is read-only with every capability dropped and no privilege escalation.
struct ChartSidecar {
    command: Vec<String>,
    mounts: Mounts,
    locked_down: bool,
}

fn chart_agent(run_dir: &Path) -> ChartAgent {
    let docs = read_documents(&deploy_dir().join("manifests/tetra.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let cm = &find(&docs, "ConfigMap", "tetragon-config").expect("ConfigMap")["data"];
    let pod = &find(&docs, "DaemonSet", "tetragon").expect("DaemonSet")["spec"]["template"]["spec"];
    let container = |name: &str| pod["containers"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
    let c = container("tetragon");
    let env: BTreeMap<&str, &str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let key = e["valueFrom"]["configMapKeyRef"]["key"].as_str()?;
            Some((e["name"].as_str()?, cm[key].as_str()?))
        })
        .collect();
    let mut args = Vec::new();
    for a in c["args"].as_array().unwrap() {
        let mut a = a.as_str().unwrap().to_string();
        for (name, value) in &env {
            a = a.replace(&format!("$({name})"), value);
        }
        // No API server here; the metrics port would collide with other agents on the
        // host network, so the kernel picks one.
        if a == "--enable-k8s-api" {
            continue;
        }
        if a.starts_with("--metrics-server=") {
            a = "--metrics-server=127.0.0.1:0".into();
        }
        // Tetragon's default deny list drops events without a pod namespace: all of them
        // here, where there are no pods. Health checks stay out.
        if a.starts_with("--export-denylist=") {
            a = r#"--export-denylist={"health_check":true}"#.into();
        }
        args.push(a);
    }
    // The host directories; the projected API token volume is left out (no API server here).
    let volumes: BTreeMap<&str, &str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| Some((v["name"].as_str().unwrap(), v["hostPath"]["path"].as_str()?)))
        .collect();
    let mounts_of = |c: &Value| -> Mounts {
        c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| {
                let dst = m["mountPath"].as_str().unwrap().to_string();
                let src = if dst == "/var/run/tetragon" {
                    run_dir.display().to_string()
                } else {
                    volumes.get(m["name"].as_str().unwrap())?.to_string()
                };
                Some((src, dst, m["readOnly"] == true))
            })
            .collect()
    };
    let side = container("export-stdout");
    let security = &side["securityContext"];
    let sidecar = ChartSidecar {
        command: side["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect(),
        mounts: mounts_of(side),
        locked_down: security["readOnlyRootFilesystem"] == true
            && security["allowPrivilegeEscalation"] == false
            && security["capabilities"]["drop"] == serde_json::json!(["ALL"]),
    };
    assert!(side["args"].is_null(), "export-stdout: args beside command: {side}");
    ChartAgent { args, mounts: mounts_of(c), sidecar }
}

/// Lines printed by a long-running command, collected by a thread.
struct Stream {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl Stream {
    fn start(cmd: &mut Command) -> Stream {
        let mut child = cmd.stdout(Stdio::piped()).stdin(Stdio::null()).spawn().expect("spawn");
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    l.lock().unwrap().push(v);
                }
            }
        });
        Stream { child, lines }
    }

    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(v) = self.lines.lock().unwrap().iter().find(|v| pred(v)) {
                return v.clone();
            }
            assert!(start.elapsed() < timeout, "no {what} in {timeout:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The victim image: busybox-static as /bin/busybox and as /bin/busybox-victim, the binary
/// the policy kills (busybox runs a name starting with "busybox" as the multi-call binary).
fn victim_archive(dir: &Path) -> PathBuf {
    let root = dir.join("victim-root/bin");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy("/bin/busybox", root.join("busybox")).unwrap();
    std::fs::copy("/bin/busybox", root.join("busybox-victim")).unwrap();
    let c = run(Command::new("buildah").args(["from", "scratch"])).unwrap_or_else(|e| panic!("{e}"));
    let c = c.trim();
    let archive = dir.join("victim.tar");
    let steps = [
        vec!["copy".into(), c.into(), dir.join("victim-root").display().to_string(), "/".into()],
        vec![
            "commit".into(),
            "--rm".into(),
            "--format".into(),
            "oci".into(),
            c.into(),
            format!("oci-archive:{}:{VICTIM}", archive.display()),
        ],
    ];
    for s in steps {
        run(Command::new("buildah").args(s)).unwrap_or_else(|e| panic!("{e}"));
    }
    archive
}

const VICTIM: &str = "localhost/tetra-test-victim:1";

fn policy_yaml() -> &'static str {
    "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: kill-in-container}
spec:
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_getcwd
    selectors:
    - matchBinaries: [{operator: In, values: [/bin/busybox-victim]}]
      matchActions: [{action: Sigkill}]
"
}

/// A container runtime, as the test drives it.
trait Runtime {
    fn name(&self) -> &'static str;
    fn load(&self, archive: &Path);
    /// Starts the agent container `name` of `image` with the chart's mounts and args.
    fn start_agent(&self, name: &str, image: &str, agent: &ChartAgent);
    /// Runs a command in the agent's container, stdin empty.
    fn exec(&self, name: &str, cmd: &[&str]) -> Command;
    /// Runs `cmd` in a new container of `image`; returns its id and exit code.
    fn run_victim(&self, image: &str, cmd: &[&str]) -> (String, i32);
    fn agent_logs(&self, name: &str) -> String;
    /// Starts the chart's export-stdout container `name` of `image`; false where this
    /// runtime keeps no container output to read back (`ctr run -d`).
    fn start_export_stdout(&self, name: &str, image: &str, sidecar: &ChartSidecar) -> bool;
    /// What the export-stdout container printed so far.
    fn export_stdout_logs(&self, name: &str) -> String;
    fn cleanup(&self, agent: &str, images: &[&str]);
}

fn scenario(rt: &dyn Runtime, built: &images::Built, dir: &Path) {
    let agent_image = format!("docker.io/tetra/tetrad:{}", built.version);
    rt.load(&built.agent);
    rt.load(&victim_archive(dir));
    let run_dir = dir.join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let name = format!("tetra-agent-test-{}", std::process::id());
    let chart = chart_agent(&run_dir);
    rt.start_agent(&name, &agent_image, &chart);
    let sidecar = format!("{name}-export-stdout");
    let sidecar = rt.start_export_stdout(&sidecar, &agent_image, &chart.sidecar).then_some(sidecar);
    if sidecar.is_none() {
        eprintln!("{}: export-stdout not run (the runtime keeps no container output)", rt.name());
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        checks(rt, &name, &run_dir);
        if let Some(sidecar) = &sidecar {
            export_stdout_checks(rt, &name, sidecar, &run_dir);
        }
    }));
    if result.is_err() {
        eprintln!("agent logs ({}):\n{}", rt.name(), rt.agent_logs(&name));
    }
    rt.cleanup(&name, &[&agent_image, VICTIM]);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

fn process<'a>(e: &'a Value, kind: &str) -> &'a Value {
    &e[kind]["process"]
}

fn checks(rt: &dyn Runtime, name: &str, run_dir: &Path) {
    let start = Instant::now();
    while !run_dir.join("tetragon-info.json").exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "the agent did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    let events = Stream::start(&mut rt.exec(name, &["tetra", "getevents", "-o", "json"]));

    // A host process: its host pid and binary, until the stream is attached.
    let start = Instant::now();
    let host = loop {
        let child = Command::new("/bin/echo").arg("tetra-image-marker").stdout(Stdio::null()).spawn().unwrap();
        let pid = child.id();
        let _ = child.wait_with_output();
        let found = events.lines.lock().unwrap().iter().find(|e| {
            let p = process(e, "process_exec");
            p["pid"] == pid && p["arguments"] == "tetra-image-marker"
        }).cloned();
        if let Some(e) = found {
            break e;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no exec event of a host process");
        std::thread::sleep(Duration::from_millis(500));
    };
    // The path it was executed by, as Tetragon reports it.
    assert_eq!(process(&host, "process_exec")["binary"], "/bin/echo", "{host}");
    assert_eq!(process(&host, "process_exec")["docker"], Value::Null, "a host process: {host}");

    std::fs::write(run_dir.join("kill.yaml"), policy_yaml()).unwrap();
    let add = run(&mut rt.exec(name, &["tetra", "tracingpolicy", "add", "/var/run/tetragon/kill.yaml"]));
    add.unwrap_or_else(|e| panic!("{e}"));
    let list = run(&mut rt.exec(name, &["tetra", "tracingpolicy", "list"])).unwrap_or_else(|e| panic!("{e}"));
    assert!(list.contains("kill-in-container") && list.contains("enabled"), "{list}");

    // `pwd -P` calls getcwd. The container outlives the kill by a second, so its cgroup is
    // still there when the agent looks the exec event's cgroup up.
    let (id, code) = rt.run_victim(
        VICTIM,
        &["/bin/busybox", "sh", "-c", "/bin/busybox-victim pwd -P; s=$?; sleep 1; exit $s"],
    );
    assert_eq!(code, 128 + 9, "{}: the victim was killed by SIGKILL", rt.name());
    let short: String = id.chars().take(31).collect();
    let is_victim = |kind: &'static str| {
        move |e: &Value| process(e, kind)["binary"] == "/bin/busybox-victim"
    };
    let exec = events.wait_for("exec of the victim", Duration::from_secs(10), is_victim("process_exec"));
    let exit = events.wait_for("exit of the victim", Duration::from_secs(10), is_victim("process_exit"));
    assert_eq!(exit["process_exit"]["signal"], "SIGKILL", "{exit}");
    let hit = events.wait_for("the policy's event", Duration::from_secs(5), is_victim("process_tracepoint"));
    assert_eq!(hit["process_tracepoint"]["action"], "KPROBE_ACTION_SIGKILL", "{hit}");
    assert_eq!(hit["process_tracepoint"]["policy_name"], "kill-in-container", "{hit}");
    for e in [(&exec, "process_exec"), (&exit, "process_exit"), (&hit, "process_tracepoint")] {
        let p = process(e.0, e.1);
        assert_eq!(p["docker"], short.as_str(), "{}: container id of {}", rt.name(), e.0);
        // Host pids: the victim is not pid 1 of its namespace, and exists in the host's.
        assert_ne!(p["pid"], 1, "{}", e.0);
    }
    // The container's shell too, and the agent's own namespace is not the victim's.
    let shell = events.wait_for("exec of the container's shell", Duration::from_secs(5), |e| {
        let p = process(e, "process_exec");
        p["binary"] == "/bin/busybox" && p["docker"] == short.as_str()
    });
    assert_ne!(process(&shell, "process_exec")["pid"], 1, "{shell}");
}

/// The export-stdout container's output, piped through `tetra getevents -o compact` in the
/// agent's container, shows the victim's exec and SIGKILL exit; and each line it printed is
/// a line of the agent's export file (both containers share the run directory).
fn export_stdout_checks(rt: &dyn Runtime, agent: &str, sidecar: &str, run_dir: &Path) {
    let node = format!("{}-node", rt.name());
    let want = [
        // Upstream's layout: arguments quoted when they hold a space, "exit" padded.
        format!("🚀 process {node} /bin/busybox-victim \"pwd -P\""),
        format!("💥 exit    {node} /bin/busybox-victim \"pwd -P\" SIGKILL"),
    ];
    let start = Instant::now();
    let (logs, compact) = loop {
        // The logs reach the agent's container through the run directory both share.
        let logs = rt.export_stdout_logs(sidecar);
        std::fs::write(run_dir.join("export-stdout.txt"), &logs).unwrap();
        let line = "tetra getevents -o compact </var/run/tetragon/export-stdout.txt";
        let compact = run(&mut rt.exec(agent, &["/bin/busybox", "sh", "-c", line]))
            .unwrap_or_else(|e| panic!("{e}"));
        if want.iter().all(|w| compact.lines().any(|l| l == w)) {
            break (logs, compact);
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{want:?} not in the compact output of export-stdout:\n{compact}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let file = std::fs::read_to_string(run_dir.join("tetragon.log")).expect("the export file");
    let exported: std::collections::HashSet<&str> = file.lines().collect();
    let printed: Vec<&str> = logs.lines().collect();
    assert!(printed.len() >= 2, "{compact}");
    for line in printed {
        assert!(exported.contains(line), "export-stdout printed a line not in the export file: {line}");
    }
}

/// podman with runc: crun refuses the hybrid cgroup layout, and root here lacks
/// CAP_SYS_RESOURCE, so the containers' rlimits are lowered to fixed values.
struct Podman;

const PODMAN_LIMITS: [&str; 5] = ["--runtime", "runc", "--ulimit", "nofile=4096:4096", "--ulimit=nproc=4096:4096"];

impl Runtime for Podman {
    fn name(&self) -> &'static str {
        "podman"
    }
    fn load(&self, archive: &Path) {
        run(Command::new("podman").arg("load").arg("-q").arg("-i").arg(archive)).unwrap_or_else(|e| panic!("{e}"));
    }
    fn start_agent(&self, name: &str, image: &str, agent: &ChartAgent) {
        let mut cmd = Command::new("podman");
        cmd.args(["run", "-d", "--name", name, "--privileged", "--pid=host", "--network=host"]);
        cmd.args(PODMAN_LIMITS).args(["-e", "NODE_NAME=podman-node"]);
        for (src, dst, ro) in &agent.mounts {
            cmd.arg("-v").arg(format!("{src}:{dst}{}", if *ro { ":ro" } else { "" }));
        }
        cmd.arg(image).args(&agent.args);
        run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    }
    fn exec(&self, name: &str, cmd: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.args(["exec", name]).args(cmd);
        c
    }
    fn run_victim(&self, image: &str, cmd: &[&str]) -> (String, i32) {
        let id = run(Command::new("podman").args(["run", "-d", "--network=none"]).args(PODMAN_LIMITS).arg(image).args(cmd))
            .unwrap_or_else(|e| panic!("{e}"));
        let id = id.trim().to_string();
        let code = run(Command::new("podman").args(["wait", &id])).unwrap_or_else(|e| panic!("{e}"));
        let _ = run(Command::new("podman").args(["rm", "-f", &id]));
        (id, code.trim().parse().expect("exit code"))
    }
    fn agent_logs(&self, name: &str) -> String {
        Command::new("podman").args(["logs", name]).output().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_default()
    }
    fn start_export_stdout(&self, name: &str, image: &str, sidecar: &ChartSidecar) -> bool {
        let mut cmd = Command::new("podman");
        cmd.args(["run", "-d", "--name", name, "--network=none"]).args(PODMAN_LIMITS);
        if sidecar.locked_down {
            cmd.args(["--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges"]);
        }
        for (src, dst, ro) in &sidecar.mounts {
            cmd.arg("-v").arg(format!("{src}:{dst}{}", if *ro { ":ro" } else { "" }));
        }
        // A pod's `command` replaces the image's entrypoint.
        cmd.arg("--entrypoint").arg(serde_json::to_string(&sidecar.command).unwrap()).arg(image);
        run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
        true
    }
    fn export_stdout_logs(&self, name: &str) -> String {
        run(Command::new("podman").args(["logs", name])).unwrap_or_else(|e| panic!("{e}"))
    }
    fn cleanup(&self, agent: &str, images: &[&str]) {
        let _ = run(Command::new("podman").args(["rm", "-f", "-t", "1", &format!("{agent}-export-stdout")]));
        let _ = run(Command::new("podman").args(["rm", "-f", "-t", "5", agent]));
        let _ = run(Command::new("podman").arg("rmi").args(images));
    }
}

/// containerd 1.6 started for the test in a scratch directory, driven with `ctr`.
struct Containerd {
    daemon: Mutex<Child>,
    dir: PathBuf,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        let dir = dir.join("containerd");
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{0}/containerd.sock\"\n",
                dir.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let daemon = Command::new("containerd").arg("--config").arg(&config).stdout(log.try_clone().unwrap()).stderr(log).spawn().expect("containerd");
        let c = Containerd { daemon: Mutex::new(daemon), dir };
        let start = Instant::now();
        while run(&mut c.ctr(&["version"])).is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "containerd did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        c
    }

    fn ctr(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("-a").arg(self.dir.join("containerd.sock")).args(["-n", "k8s.io"]).args(args);
        c
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let mut d = self.daemon.lock().unwrap();
        let _ = d.kill();
        let _ = d.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A 64-hex-digit id, as the CRI gives containers.
fn hex_id() -> String {
    let bytes = std::fs::read("/proc/sys/kernel/random/uuid").unwrap();
    let more = std::fs::read("/proc/sys/kernel/random/uuid").unwrap();
    [bytes, more].concat().iter().filter(|b| b.is_ascii_hexdigit()).map(|b| *b as char).collect()
}

impl Runtime for Containerd {
    fn name(&self) -> &'static str {
        "containerd"
    }
    fn load(&self, archive: &Path) {
        run(&mut self.ctr(&["images", "import", &archive.display().to_string()])).unwrap_or_else(|e| panic!("{e}"));
    }
    fn start_agent(&self, name: &str, image: &str, agent: &ChartAgent) {
        // The host pid namespace: this test's (pid 1's link may not be readable here).
        let host_pid_ns = format!("pid:/proc/{}/ns/pid", std::process::id());
        let mut cmd = self.ctr(&["run", "-d", "--privileged", "--net-host", "--with-ns", &host_pid_ns, "--env", "NODE_NAME=containerd-node"]);
        for (src, dst, ro) in &agent.mounts {
            let options = if *ro { "rbind:ro" } else { "rbind:rw" };
            cmd.arg("--mount").arg(format!("type=bind,src={src},dst={dst},options={options}"));
        }
        // ctr takes the whole command line: the image's entrypoint first.
        cmd.args([image, name, "/usr/bin/tetrad"]).args(&agent.args);
        run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    }
    fn exec(&self, name: &str, cmd: &[&str]) -> Command {
        // ctr hands the process a pipe as stdin, which `tetra getevents` would read as
        // saved events: give it an empty /dev/null, as `kubectl exec` without -i does.
        let line = cmd.join(" ") + " </dev/null";
        let exec_id = format!("x{}", hex_id().get(..12).unwrap_or("0"));
        self.ctr(&["tasks", "exec", "--exec-id", &exec_id, name, "/bin/busybox", "sh", "-c", &line])
    }
    fn run_victim(&self, image: &str, cmd: &[&str]) -> (String, i32) {
        let id = hex_id();
        let out = self.ctr(&["run", "--rm", image, &id]).args(cmd).output().expect("ctr run");
        (id, out.status.code().unwrap_or(-1))
    }
    fn agent_logs(&self, _name: &str) -> String {
        "(ctr run -d keeps no logs)".into()
    }
    fn start_export_stdout(&self, _name: &str, _image: &str, _sidecar: &ChartSidecar) -> bool {
        false
    }
    fn export_stdout_logs(&self, _name: &str) -> String {
        String::new()
    }
    fn cleanup(&self, agent: &str, images: &[&str]) {
        let _ = run(&mut self.ctr(&["tasks", "kill", "-s", "SIGTERM", agent]));
        let start = Instant::now();
        while run(&mut self.ctr(&["tasks", "rm", agent])).is_err() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(300));
        }
        let _ = run(&mut self.ctr(&["tasks", "rm", "-f", agent]));
        let _ = run(&mut self.ctr(&["containers", "rm", agent]));
        let mut rmi = self.ctr(&["images", "rm"]);
        let _ = run(rmi.args(images));
    }
}

/// One runtime test at a time: both start an agent on the same kernel and host network.
static SERIAL: Mutex<()> = Mutex::new(());

/// Builds the images once; None (printing why) when a tool of `tools` is missing (buildah
/// builds the victim image).
fn prepare(tools: &[&str]) -> Option<(images::Built, PathBuf)> {
    if let Some(why) = images::missing_tools() {
        eprintln!("skipped: {why}");
        return None;
    }
    if let Some(t) = tools.iter().find(|t| !on_path(t)) {
        eprintln!("skipped: {t} not found (deploy/host/deps.sh --tests installs it)");
        return None;
    }
    let built = images::build().unwrap_or_else(|e| panic!("{e}"));
    let dir = std::env::temp_dir().join(format!("tetra-containers-{}-{}", tools[0], std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Some((built, dir))
}

#[test]
#[ignore = "needs root: runs the agent image in podman (the README test command runs it)"]
fn agent_image_in_podman() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some((built, dir)) = prepare(&["podman", "runc", "buildah"]) else { return };
    scenario(&Podman, &built, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs root: runs the agent image in containerd (the README test command runs it)"]
fn agent_image_in_containerd() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some((built, dir)) = prepare(&["containerd", "ctr", "runc", "buildah"]) else { return };
    let containerd = Containerd::start(&dir);
    scenario(&containerd, &built, &dir);
    drop(containerd);
    let _ = std::fs::remove_dir_all(&dir);
}
