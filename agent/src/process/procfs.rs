//! Processes that were running before the agent started, read from /proc, so that their
//! later children still get a parent.
use std::fs;
use std::path::Path;

use super::{abi_ns, exec_id, render_arguments, Caps, Flags, Process};
use crate::abi::NS_COUNT;

/// Reads every process under `procfs`. Processes that vanish while being read are skipped.
pub fn scan(procfs: &Path, node: &str) -> Vec<Process> {
    let ticks = clock_ticks();
    let Ok(dir) = fs::read_dir(procfs) else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter_map(|pid| read_process(&procfs.join(pid.to_string()), pid, node, ticks))
        .collect()
}

/// Namespace inodes of one process (pid 1's are the host's).
pub fn namespaces(proc_dir: &Path) -> [u32; NS_COUNT] {
    let mut ns = [0; NS_COUNT];
    for (i, name) in abi_ns::PROC_NAMES.iter().enumerate() {
        ns[i] = fs::read_link(proc_dir.join("ns").join(name))
            .ok()
            .and_then(|l| ns_inode(&l.to_string_lossy()))
            .unwrap_or(0);
    }
    ns
}

/// "net:[4026531840]" -> 4026531840
fn ns_inode(link: &str) -> Option<u32> {
    link.split_once(":[")?.1.strip_suffix(']')?.parse().ok()
}

fn clock_ticks() -> u64 {
    let t = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(0);
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// The fields of /proc/PID/stat after the parenthesised command name.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().collect())
}

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(str::trim))
}

fn read_process(dir: &Path, pid: u32, node: &str, ticks: u64) -> Option<Process> {
    let stat = fs::read_to_string(dir.join("stat")).ok()?;
    let fields = stat_fields(&stat)?;
    // After the name: state(0) ppid(1) ... starttime is field 22 of stat, index 19 here.
    let ppid: u32 = fields.get(1)?.parse().ok()?;
    let start_ticks: u64 = fields.get(19)?.parse().ok()?;
    let start_ktime = start_ticks.saturating_mul(1_000_000_000) / ticks;
    let status = fs::read_to_string(dir.join("status")).ok()?;
    let uid = status_field(&status, "Uid")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cap = |key| {
        status_field(&status, key).and_then(|v| u64::from_str_radix(v, 16).ok()).unwrap_or(0)
    };
    let cmdline = fs::read(dir.join("cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    let cmdline = cmdline.strip_suffix('\0').unwrap_or(&cmdline);
    let binary = fs::read_link(dir.join("exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cwd = fs::read_link(dir.join("cwd"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let auid = fs::read_to_string(dir.join("loginuid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u32::MAX);
    Some(Process {
        exec_id: exec_id(node, start_ktime, pid),
        pid,
        tid: pid,
        ppid,
        uid,
        auid,
        flags: Flags { procfs: true, root_cwd: cwd == "/", ..Flags::default() },
        cwd,
        binary,
        arguments: render_arguments(cmdline.split('\0').skip(1).filter(|a| !a.is_empty())),
        start_ktime,
        parent_exec_id: String::new(),
        caps: Caps { permitted: cap("CapPrm"), effective: cap("CapEff"), inheritable: cap("CapInh") },
        ns: namespaces(dir),
        cgroup_id: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let procs = scan(Path::new("/proc"), "node");
        let p = procs.iter().find(|p| p.pid == me).expect("own process in /proc");
        assert_eq!(p.binary, std::env::current_exe().unwrap().to_string_lossy());
        assert_eq!(p.ppid, std::os::unix::process::parent_id());
        assert_eq!(p.cwd, std::env::current_dir().unwrap().to_string_lossy());
        assert!(p.flags.procfs);
        assert!(p.ns.iter().any(|&n| n != 0));
    }

    #[test]
    fn parses_namespace_links_and_stat_names_with_parens() {
        assert_eq!(ns_inode("net:[4026531840]"), Some(4026531840));
        assert_eq!(ns_inode("garbage"), None);
        let f = stat_fields("42 (a) b (c)) S 7 42 42 0").unwrap();
        assert_eq!(f[0], "S");
        assert_eq!(f[1], "7");
    }
}
