//! Kernel records + process cache -> Tetragon events (`GetEventsResponse`).
pub mod generic;
pub mod published;
pub mod stacks;

pub use published::Published;

use tetra_proto::tetragon::{self, get_events_response::Event, GetEventsResponse};

use crate::process::cache::Snapshot;
use crate::process::Render;

pub struct EventBuilder {
    pub node: String,
    pub render: Render,
    /// Names the return addresses of stack traces.
    pub stacks: stacks::Symbolizer,
}

/// Signal names as Tetragon prints them in `process_exit.signal`.
pub fn signal_name(sig: u32) -> String {
    const NAMES: [&str; 32] = [
        "", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
        "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT",
        "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
        "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
    ];
    match NAMES.get(sig as usize) {
        Some(name) => name.to_string(),
        None => format!("SIG{sig}"),
    }
}

impl EventBuilder {
    fn envelope(&self, ktime: u64, event: Event) -> GetEventsResponse {
        GetEventsResponse {
            event: Some(event),
            node_name: self.node.clone(),
            time: Some(self.render.clock.wall(ktime).into()),
            ..Default::default()
        }
    }

    fn process(&self, s: &Snapshot) -> tetragon::Process {
        self.render.process(&s.process, s.refcnt)
    }

    pub fn exec(&self, process: &Snapshot, parent: Option<&Snapshot>) -> GetEventsResponse {
        let exec = tetragon::ProcessExec {
            process: Some(self.process(process)),
            parent: parent.map(|p| self.process(p)),
            ..Default::default()
        };
        self.envelope(process.process.start_ktime, Event::ProcessExec(exec))
    }

    /// `wait_status` is the kernel's exit_code: (status << 8) | terminating signal.
    pub fn exit(
        &self,
        process: &Snapshot,
        parent: Option<&Snapshot>,
        wait_status: u32,
        ktime: u64,
    ) -> GetEventsResponse {
        let signal = wait_status & 0x7f;
        let exit = tetragon::ProcessExit {
            process: Some(self.process(process)),
            parent: parent.map(|p| self.process(p)),
            signal: if signal != 0 { signal_name(signal) } else { String::new() },
            status: (wait_status >> 8) & 0xff,
            time: Some(self.render.clock.wall(ktime).into()),
            ..Default::default()
        };
        self.envelope(ktime, Event::ProcessExit(exit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::process::{Flags, Process};

    fn builder() -> EventBuilder {
        EventBuilder {
            node: "node-a".into(),
            render: Render { clock: Clock::new(), host_ns: [7; 10], with_caps: true, with_ns: true },
            stacks: Default::default(),
        }
    }

    fn snap(binary: &str, pid: u32) -> Snapshot {
        Snapshot {
            process: Process {
                exec_id: crate::process::exec_id("node-a", 5, pid),
                pid,
                tid: pid,
                binary: binary.into(),
                arguments: "-c x".into(),
                cwd: "/tmp".into(),
                flags: Flags { execve: true, clone: true, ..Flags::default() },
                caps: crate::process::Caps { effective: 1 << 21, ..Default::default() },
                ns: [7, 7, 7, 8, 7, 7, 7, 7, 7, 7],
                auid: u32::MAX,
                ..Process::default()
            },
            refcnt: 1,
        }
    }

    #[test]
    fn exec_json_has_tetragon_shape() {
        let b = builder();
        let ev = b.exec(&snap("/bin/sh", 10), Some(&snap("/sbin/init", 1)));
        let v: serde_json::Value =
            serde_json::from_str(&tetra_proto::json::to_line(&ev)).unwrap();
        let p = &v["process_exec"]["process"];
        assert_eq!(p["binary"], "/bin/sh");
        assert_eq!(p["pid"], 10);
        assert_eq!(p["uid"], 0, "uid 0 is present, as a wrapper value");
        assert_eq!(p["auid"], 4294967295u32);
        assert_eq!(p["flags"], "execve clone");
        assert_eq!(p["cwd"], "/tmp");
        assert_eq!(p["cap"]["effective"][0], "CAP_SYS_ADMIN");
        assert_eq!(p["ns"]["pid"]["inum"], 8);
        assert_eq!(p["ns"]["pid"].get("is_host"), None, "false is omitted");
        assert_eq!(p["ns"]["uts"]["is_host"], true);
        assert_eq!(v["process_exec"]["parent"]["binary"], "/sbin/init");
        assert_eq!(v["node_name"], "node-a");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn exit_has_status_or_signal() {
        let b = builder();
        let ev = b.exit(&snap("/bin/sh", 10), None, 3 << 8, 99);
        let v: serde_json::Value =
            serde_json::from_str(&tetra_proto::json::to_line(&ev)).unwrap();
        assert_eq!(v["process_exit"]["status"], 3);
        assert_eq!(v["process_exit"].get("signal"), None);
        let ev = b.exit(&snap("/bin/sleep", 11), None, 9, 99);
        let v: serde_json::Value =
            serde_json::from_str(&tetra_proto::json::to_line(&ev)).unwrap();
        assert_eq!(v["process_exit"]["signal"], "SIGKILL");
        assert_eq!(v["process_exit"].get("status"), None);
    }
}
