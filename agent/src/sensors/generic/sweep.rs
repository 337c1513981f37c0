//! Removes the entries of the policies' no-prealloc maps whose task is gone. Two maps are
//! keyed by a task and filled by one program but emptied by another that may never run:
//! `stash` (pid_tgid -> a call in flight) keeps the call of a thread that died inside the
//! hooked function, and `fd_follow` (tgid, fd -> path) the fds of a process that exited
//! without closing them (exit closes files without the close syscall a policy hooks).
//! Neither map evicts (a full one fails the insert, counted), so the dead entries go here.
use std::path::Path;

use libbpf_rs::{MapCore, MapHandle};

/// Deletes the entries of `map` whose key `alive` rejects; returns how many went.
fn sweep(map: &MapHandle, alive: impl Fn(&[u8]) -> bool) -> usize {
    let dead: Vec<Vec<u8>> = map.keys().filter(|k| !alive(k)).collect();
    dead.iter().filter(|k| map.delete(k).is_ok()).count()
}

/// `stash` entries (key: pid_tgid) of threads no longer in `procfs`.
pub fn calls_in_flight(map: &MapHandle, procfs: &Path) -> usize {
    sweep(map, |key| {
        let Ok(bytes) = <[u8; 8]>::try_from(key) else { return true };
        let pid_tgid = u64::from_ne_bytes(bytes);
        // 0: a call made without a task (interrupt context), not a thread's.
        pid_tgid == 0 || procfs.join(format!("{}/task/{}", pid_tgid >> 32, pid_tgid as u32)).exists()
    })
}

/// `fd_follow` entries (key: tgid, fd) of processes no longer in `procfs`.
pub fn followed_fds(map: &MapHandle, procfs: &Path) -> usize {
    sweep(map, |key| {
        let Some(tgid) = key.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_ne_bytes) else {
            return true;
        };
        procfs.join(tgid.to_string()).exists()
    })
}
