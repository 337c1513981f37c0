//! What the agent knows about a process, built from kernel exec/clone messages or /proc,
//! and how it is rendered in Tetragon's `Process` message.
pub mod cache;
pub mod procfs;

use base64::Engine;
use tetra_proto::tetragon;

use crate::abi::{self, ExecRecord, NS_COUNT};
use crate::clock::Clock;

/// Tetragon's process flag words, in the order Tetragon prints them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub execve: bool,
    pub procfs: bool,
    pub trunc_filename: bool,
    pub trunc_args: bool,
    pub miss: bool,
    pub error_args: bool,
    pub root_cwd: bool,
    pub error_cwd: bool,
    pub clone: bool,
}

impl Flags {
    pub fn render(&self) -> String {
        let words = [
            (self.execve, "execve"),
            (self.procfs, "procFS"),
            (self.trunc_filename, "truncFilename"),
            (self.trunc_args, "truncArgs"),
            (self.miss, "miss"),
            (self.error_args, "errorArgs"),
            (self.root_cwd, "rootcwd"),
            (self.error_cwd, "errorCWD"),
            (self.clone, "clone"),
        ];
        let set: Vec<&str> = words.iter().filter(|(on, _)| *on).map(|(_, w)| *w).collect();
        set.join(" ")
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    pub permitted: u64,
    pub effective: u64,
    pub inheritable: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    pub exec_id: String,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub auid: u32,
    pub cwd: String,
    pub binary: String,
    pub arguments: String,
    pub flags: Flags,
    /// Kernel monotonic time of the exec (or fork, for a process that never exec'd).
    pub start_ktime: u64,
    pub parent_exec_id: String,
    pub caps: Caps,
    pub ns: [u32; NS_COUNT],
    pub cgroup_id: u64,
}

/// Tetragon's exec id: base64 of "node:ktime:pid", unique per exec.
pub fn exec_id(node: &str, ktime: u64, pid: u32) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{node}:{ktime}:{pid}"))
}

/// Renders argv (argv[0] excluded) as Tetragon does: space-joined, an argument holding a
/// space wrapped in double quotes.
pub fn render_arguments<'a>(args: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = args
        .map(|a| if a.contains(' ') { format!("\"{a}\"") } else { a.to_string() })
        .collect();
    quoted.join(" ")
}

/// Text of kernel bytes; a multi-byte character cut by truncation is dropped, not garbled.
fn text(bytes: &[u8], truncated: bool) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(e) if truncated && e.error_len().is_none() => {
            String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Joins a relative execve path with the working directory.
fn absolute(filename: String, cwd: &str) -> String {
    if filename.starts_with('/') || cwd.is_empty() {
        return filename;
    }
    let rel = filename.strip_prefix("./").unwrap_or(&filename);
    if cwd.ends_with('/') {
        format!("{cwd}{rel}")
    } else {
        format!("{cwd}/{rel}")
    }
}

impl Process {
    /// A process as its exec message describes it; parent links are set by the cache.
    pub fn from_exec(node: &str, rec: &ExecRecord) -> Process {
        let m = &rec.msg;
        let trunc_args = m.exec_flags & abi::EXEC_TRUNC_ARGS != 0;
        let trunc_filename = m.exec_flags & abi::EXEC_TRUNC_FILENAME != 0;
        let error_cwd = m.exec_flags & abi::EXEC_ERROR_CWD != 0;
        let cwd = text(&rec.cwd, m.exec_flags & abi::EXEC_TRUNC_CWD != 0);
        let args_text = text(&rec.args, trunc_args);
        // argv is NUL-terminated per argument; the last NUL ends the list.
        let args_text = args_text.strip_suffix('\0').unwrap_or(&args_text);
        let arguments = render_arguments(args_text.split('\0').skip(1));
        let binary = absolute(text(&rec.filename, trunc_filename), &cwd);
        Process {
            exec_id: exec_id(node, m.hdr.ktime, m.pid),
            pid: m.pid,
            tid: m.tid,
            ppid: m.ppid,
            uid: m.uid,
            auid: m.auid,
            flags: Flags {
                execve: true,
                trunc_filename,
                trunc_args,
                error_args: m.exec_flags & abi::EXEC_ERROR_ARGS != 0,
                root_cwd: cwd == "/",
                error_cwd,
                ..Flags::default()
            },
            cwd,
            binary,
            arguments,
            start_ktime: m.hdr.ktime,
            parent_exec_id: String::new(),
            caps: Caps {
                permitted: m.cap_permitted,
                effective: m.cap_effective,
                inheritable: m.cap_inheritable,
            },
            ns: m.ns_inum,
            cgroup_id: m.cgroup_id,
        }
    }

    /// A forked child: the parent's image under a new pid and exec id, until it execs.
    /// The cache links it to its parent (`parent_exec_id`) when it takes the reference.
    pub fn forked(&self, node: &str, pid: u32, ktime: u64) -> Process {
        Process {
            exec_id: exec_id(node, ktime, pid),
            pid,
            tid: pid,
            ppid: self.pid,
            parent_exec_id: String::new(),
            start_ktime: ktime,
            flags: Flags { clone: true, ..Flags::default() },
            ..self.clone()
        }
    }
}

/// Options of the rendering that hold for the agent's whole run.
#[derive(Clone, Debug)]
pub struct Render {
    pub clock: Clock,
    /// Namespace inodes of the host (pid 1), to fill `is_host`.
    pub host_ns: [u32; NS_COUNT],
    pub with_caps: bool,
    pub with_ns: bool,
}

/// Capability bits as Tetragon's CapabilitiesType values (the bit number is the value).
/// The capabilities set in `bits`, as `CapabilitiesType` numbers.
pub(crate) fn cap_list(bits: u64) -> Vec<i32> {
    (0..=40).filter(|b| bits & (1u64 << b) != 0).map(|b| b as i32).collect()
}

impl Render {
    pub fn process(&self, p: &Process, refcnt: u32) -> tetragon::Process {
        let ns = |i: usize| {
            Some(tetragon::Namespace { inum: p.ns[i], is_host: p.ns[i] == self.host_ns[i] })
        };
        tetragon::Process {
            exec_id: p.exec_id.clone(),
            pid: Some(p.pid),
            uid: Some(p.uid),
            cwd: p.cwd.clone(),
            binary: p.binary.clone(),
            arguments: p.arguments.clone(),
            flags: p.flags.render(),
            start_time: Some(self.clock.wall(p.start_ktime).into()),
            auid: Some(p.auid),
            parent_exec_id: p.parent_exec_id.clone(),
            refcnt,
            tid: Some(p.tid),
            cap: self.with_caps.then(|| tetragon::Capabilities {
                permitted: cap_list(p.caps.permitted),
                effective: cap_list(p.caps.effective),
                inheritable: cap_list(p.caps.inheritable),
            }),
            ns: self.with_ns.then(|| tetragon::Namespaces {
                uts: ns(abi_ns::UTS),
                ipc: ns(abi_ns::IPC),
                mnt: ns(abi_ns::MNT),
                pid: ns(abi_ns::PID),
                pid_for_children: ns(abi_ns::PID_FOR_CHILDREN),
                net: ns(abi_ns::NET),
                time: ns(abi_ns::TIME),
                time_for_children: ns(abi_ns::TIME_FOR_CHILDREN),
                cgroup: ns(abi_ns::CGROUP),
                user: ns(abi_ns::USER),
            }),
            ..Default::default()
        }
    }
}

/// Indexes of `enum tetra_ns`.
pub mod abi_ns {
    pub const UTS: usize = 0;
    pub const IPC: usize = 1;
    pub const MNT: usize = 2;
    pub const PID: usize = 3;
    pub const PID_FOR_CHILDREN: usize = 4;
    pub const NET: usize = 5;
    pub const TIME: usize = 6;
    pub const TIME_FOR_CHILDREN: usize = 7;
    pub const CGROUP: usize = 8;
    pub const USER: usize = 9;
    /// The /proc/PID/ns entry of each index.
    pub const PROC_NAMES: [&str; super::NS_COUNT] = [
        "uts",
        "ipc",
        "mnt",
        "pid",
        "pid_for_children",
        "net",
        "time",
        "time_for_children",
        "cgroup",
        "user",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{MsgExec, MsgHeader};

    fn exec(filename: &[u8], args: &[u8], cwd: &[u8], flags: u32) -> ExecRecord {
        ExecRecord {
            msg: MsgExec {
                hdr: MsgHeader { op: abi::MSG_EXEC, ktime: 1234, ..Default::default() },
                pid: 10,
                tid: 10,
                ppid: 1,
                exec_flags: flags,
                ..Default::default()
            },
            filename: filename.to_vec(),
            args: args.to_vec(),
            cwd: cwd.to_vec(),
        }
    }

    #[test]
    fn renders_arguments_like_tetragon() {
        let p = Process::from_exec("n", &exec(b"/bin/echo", b"/bin/echo\0a b\0c\0", b"/tmp", 0));
        assert_eq!(p.arguments, "\"a b\" c");
        assert_eq!(p.binary, "/bin/echo");
        assert_eq!(p.cwd, "/tmp");
        assert_eq!(p.flags.render(), "execve");
        let sh = Process::from_exec(
            "n",
            &exec(b"/bin/sh", b"/bin/sh\0-c\0cd /tmp && /bin/echo \"a b\" c; exit 3\0", b"/", 0),
        );
        assert_eq!(sh.arguments, "-c \"cd /tmp && /bin/echo \"a b\" c; exit 3\"");
        assert_eq!(sh.flags.render(), "execve rootcwd");
    }

    #[test]
    fn exec_id_is_base64_of_node_ktime_pid() {
        assert_eq!(
            exec_id("kind-control-plane", 791364218402, 12592),
            "a2luZC1jb250cm9sLXBsYW5lOjc5MTM2NDIxODQwMjoxMjU5Mg=="
        );
    }

    #[test]
    fn relative_binary_is_joined_with_cwd() {
        let p = Process::from_exec("n", &exec(b"./tool", b"./tool\0", b"/opt/x", 0));
        assert_eq!(p.binary, "/opt/x/tool");
    }

    #[test]
    fn truncation_sets_flags_and_drops_a_cut_character() {
        // "é" is two bytes; the kernel cut after the first one.
        let p = Process::from_exec(
            "n",
            &exec(b"/bin/x", b"/bin/x\0abc\xc3", b"/", abi::EXEC_TRUNC_ARGS),
        );
        assert_eq!(p.arguments, "abc");
        assert_eq!(p.flags.render(), "execve truncArgs rootcwd");
    }

    #[test]
    fn capability_bits_map_to_enum_values() {
        assert_eq!(cap_list(0b101), vec![0, 2]);
        assert_eq!(cap_list(1 << 21), vec![21]);
        assert_eq!(cap_list(u64::MAX).len(), 41);
    }
}
