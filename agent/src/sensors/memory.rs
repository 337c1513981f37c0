//! Kernel memory of BPF objects, as the kernel charges it (`memlock` in
//! `/proc/<pid>/fdinfo`). A process holds its BPF objects in three ways: map and program
//! fds, and link fds that keep a program attached (and the program its maps) after every
//! other fd was closed. Counting only map and program fds would miss what links hold, so
//! the programs behind links and the maps of every program are followed by id.
use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use libbpf_rs::libbpf_sys;

/// BPF objects reachable from one process, each counted once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BpfMemory {
    pub maps: usize,
    pub progs: usize,
    /// Sum of the objects' `memlock`.
    pub bytes: u64,
}

/// `key` of a fdinfo text (`memlock:\t4096`).
fn fdinfo_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.trim().parse().ok())
}

/// A BPF object of this process, identified across fds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BpfId {
    Map(u64),
    Prog(u64),
}

/// The identity and `memlock` of a BPF map or program fd of this process.
pub fn charge(fd: &impl AsRawFd) -> Option<(BpfId, u64)> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    let id = match (fdinfo_field(&text, "map_id"), fdinfo_field(&text, "prog_id")) {
        (Some(id), _) => BpfId::Map(id),
        (None, Some(id)) => BpfId::Prog(id),
        _ => return None,
    };
    Some((id, fdinfo_field(&text, "memlock")?))
}

fn owned(fd: i32) -> Option<OwnedFd> {
    // SAFETY: a non-negative return of the libbpf get-fd-by-id calls is a new fd we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Ids of the maps a program uses.
fn prog_maps(prog: &OwnedFd) -> Vec<u32> {
    let mut ids = vec![0u32; 64];
    let mut info = libbpf_sys::bpf_prog_info {
        nr_map_ids: ids.len() as u32,
        map_ids: ids.as_mut_ptr() as u64,
        ..Default::default()
    };
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: info and the id buffer it points to outlive the call; len is info's size.
    let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(prog.as_raw_fd(), &mut info, &mut len) };
    if rc != 0 {
        return Vec::new();
    }
    ids.truncate(info.nr_map_ids.min(64) as usize);
    ids
}

/// One BPF map or program a process holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfObject {
    pub id: BpfId,
    /// The object's name as the kernel keeps it (at most 15 bytes).
    pub name: String,
    /// `max_entries` of a map, 0 for a program.
    pub max_entries: u32,
    pub memlock: u64,
}

/// A kernel object name: NUL-padded bytes.
fn object_name(raw: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = raw.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Name and `max_entries` of a map fd.
fn map_info(map: &OwnedFd) -> (String, u32) {
    let mut info = libbpf_sys::bpf_map_info::default();
    let mut len = std::mem::size_of::<libbpf_sys::bpf_map_info>() as u32;
    // SAFETY: info outlives the call; len is its size.
    let rc = unsafe { libbpf_sys::bpf_map_get_info_by_fd(map.as_raw_fd(), &mut info, &mut len) };
    if rc != 0 {
        return (String::new(), 0);
    }
    (object_name(&info.name), info.max_entries)
}

/// Name of a program fd.
fn prog_name(prog: &OwnedFd) -> String {
    let mut info = libbpf_sys::bpf_prog_info::default();
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: info outlives the call; len is its size; no id buffers are asked for.
    let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(prog.as_raw_fd(), &mut info, &mut len) };
    if rc != 0 {
        return String::new();
    }
    object_name(&info.name)
}

/// Every BPF map and program process `pid` holds (through any fd), each once, programs
/// first. Needs root (it opens the objects by id).
pub fn objects_of_process(pid: u32) -> std::io::Result<Vec<BpfObject>> {
    let proc = Path::new("/proc").join(pid.to_string());
    let (mut maps, mut progs) = (BTreeSet::new(), BTreeSet::new());
    for entry in std::fs::read_dir(proc.join("fd"))? {
        let entry = entry?;
        let Ok(target) = std::fs::read_link(entry.path()) else { continue };
        let Ok(text) = std::fs::read_to_string(proc.join("fdinfo").join(entry.file_name())) else { continue };
        match target.to_string_lossy().as_ref() {
            "anon_inode:bpf-map" => maps.extend(fdinfo_field(&text, "map_id")),
            "anon_inode:bpf-prog" | "anon_inode:bpf_link" => progs.extend(fdinfo_field(&text, "prog_id")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for id in &progs {
        // SAFETY: plain syscall wrapper; the returned fd is owned below.
        let Some(fd) = owned(unsafe { libbpf_sys::bpf_prog_get_fd_by_id(*id as u32) }) else { continue };
        maps.extend(prog_maps(&fd).into_iter().map(u64::from));
        let memlock = charge(&fd).map_or(0, |(_, n)| n);
        out.push(BpfObject { id: BpfId::Prog(*id), name: prog_name(&fd), max_entries: 0, memlock });
    }
    for id in &maps {
        // SAFETY: as above.
        let Some(fd) = owned(unsafe { libbpf_sys::bpf_map_get_fd_by_id(*id as u32) }) else { continue };
        let (name, max_entries) = map_info(&fd);
        let memlock = charge(&fd).map_or(0, |(_, n)| n);
        out.push(BpfObject { id: BpfId::Map(*id), name, max_entries, memlock });
    }
    Ok(out)
}

/// The BPF maps and programs process `pid` holds (through any fd), with their memlock.
/// Needs root (it opens the objects by id).
pub fn of_process(pid: u32) -> std::io::Result<BpfMemory> {
    let mut out = BpfMemory::default();
    for object in objects_of_process(pid)? {
        match object.id {
            BpfId::Map(_) => out.maps += 1,
            BpfId::Prog(_) => out.progs += 1,
        }
        out.bytes += object.memlock;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn fdinfo_fields() {
        let text = "pos:\t0\nflags:\t02000002\nmap_type:\t2\nmemlock:\t8192\nmap_id:\t17\n";
        assert_eq!(super::fdinfo_field(text, "memlock"), Some(8192));
        assert_eq!(super::fdinfo_field(text, "map_id"), Some(17));
        assert_eq!(super::fdinfo_field(text, "prog_id"), None);
    }
}
