//! The process cache: every live process by pid, and exited ones for as long as a live
//! descendant still names them as parent (Tetragon's reference counting).
//!
//! `refcnt` counts the references to an entry: one for the process itself while it runs
//! and one per live child. An entry leaves the cache when it drops to zero.
use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use tetra_proto::tetragon;

use super::{Flags, Process, Render};

#[derive(Debug)]
struct Entry {
    process: Process,
    refcnt: u32,
    /// The process as events show it, rendered by the first event that needs it and
    /// shared by the next ones: a busy process makes many events between two changes.
    /// Emptied whenever `process` or `refcnt` changes.
    shown: OnceCell<Arc<Shown>>,
}

/// One rendering of a process as events show it, shared by the events that copy it, and
/// its JSON text once the export has encoded it: the export writes that text for every
/// event whose process is still this copy (see `events::Published`), without comparing
/// or encoding it again.
#[derive(Debug)]
pub struct Shown {
    pub process: tetragon::Process,
    json: OnceLock<String>,
}

impl Shown {
    pub fn new(process: tetragon::Process) -> Shown {
        Shown { process, json: OnceLock::new() }
    }

    /// `process` in JSON, encoded by the first caller.
    pub fn json(&self) -> &str {
        // Encoding a generated message into a String cannot fail.
        self.json.get_or_init(|| serde_json::to_string(&self.process).unwrap_or_default())
    }
}

impl Entry {
    fn new(process: Process) -> Entry {
        Entry {
            process,
            refcnt: 1,
            shown: OnceCell::new(),
        }
    }

    fn add_ref(&mut self) {
        self.refcnt += 1;
        self.shown.take();
    }

    /// Drops one reference; returns how many are left.
    fn drop_ref(&mut self) -> u32 {
        self.refcnt = self.refcnt.saturating_sub(1);
        self.shown.take();
        self.refcnt
    }
}

/// A process with its reference count at the time of the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub process: Process,
    pub refcnt: u32,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub size: usize,
    /// Events whose process or parent was not in the cache.
    pub misses: u64,
    /// Entries dropped because the cache was full.
    pub evictions: u64,
}

pub struct ProcessCache {
    node: String,
    capacity: usize,
    by_exec_id: HashMap<String, Entry>,
    by_pid: HashMap<u32, String>,
    misses: u64,
    evictions: u64,
}

impl ProcessCache {
    pub fn new(node: &str, capacity: usize) -> Self {
        ProcessCache {
            node: node.to_string(),
            capacity: capacity.max(1),
            by_exec_id: HashMap::new(),
            by_pid: HashMap::new(),
            misses: 0,
            evictions: 0,
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats { size: self.by_exec_id.len(), misses: self.misses, evictions: self.evictions }
    }

    /// Live process by pid.
    pub fn get_pid(&self, pid: u32) -> Option<Snapshot> {
        self.by_pid.get(&pid).and_then(|id| self.snapshot(id))
    }

    /// The cached process of `exec_id`, without a copy.
    pub fn process(&self, exec_id: &str) -> Option<&Process> {
        self.by_exec_id.get(exec_id).map(|e| &e.process)
    }

    /// The live process of `pid`, without a copy.
    pub fn process_pid(&self, pid: u32) -> Option<&Process> {
        self.process(self.by_pid.get(&pid)?)
    }

    /// The process as events show it, by exec id (`None` for an unknown or empty id).
    pub fn shown(&self, exec_id: &str, render: &Render) -> Option<Arc<Shown>> {
        let e = self.by_exec_id.get(exec_id)?;
        let render = || Arc::new(Shown::new(render.process(&e.process, e.refcnt)));
        Some(e.shown.get_or_init(render).clone())
    }

    /// The live process of `pid` as events show it.
    pub fn shown_pid(&self, pid: u32, render: &Render) -> Option<Arc<Shown>> {
        self.shown(self.by_pid.get(&pid)?, render)
    }

    fn snapshot(&self, exec_id: &str) -> Option<Snapshot> {
        self.by_exec_id
            .get(exec_id)
            .map(|e| Snapshot { process: e.process.clone(), refcnt: e.refcnt })
    }

    /// Seeds the cache from /proc at start-up; parents are linked once all are known.
    pub fn seed(&mut self, processes: Vec<Process>) {
        for p in processes {
            self.insert(p);
        }
        let links: Vec<(String, u32)> = self
            .by_exec_id
            .values()
            .map(|e| (e.process.exec_id.clone(), e.process.ppid))
            .collect();
        for (exec_id, ppid) in links {
            let Some(parent_id) = self.by_pid.get(&ppid).cloned() else { continue };
            if parent_id == exec_id {
                continue;
            }
            if let Some(parent) = self.by_exec_id.get_mut(&parent_id) {
                parent.add_ref();
            }
            if let Some(child) = self.by_exec_id.get_mut(&exec_id) {
                child.process.parent_exec_id = parent_id;
                child.shown.take();
            }
        }
    }

    fn insert(&mut self, process: Process) {
        if self.by_exec_id.len() >= self.capacity {
            self.evict_one();
        }
        if let Some(old) = self.by_pid.insert(process.pid, process.exec_id.clone()) {
            // The pid's previous image or fork entry is replaced: drop its own reference.
            self.release(&old);
        }
        self.by_exec_id.insert(process.exec_id.clone(), Entry::new(process));
    }

    /// Frees room by dropping an exited entry, or failing that any entry.
    fn evict_one(&mut self) {
        let victim = self
            .by_exec_id
            .iter()
            .find(|(_, e)| self.by_pid.get(&e.process.pid) != Some(&e.process.exec_id))
            .or_else(|| self.by_exec_id.iter().next())
            .map(|(id, _)| id.clone());
        if let Some(id) = victim {
            if let Some(e) = self.by_exec_id.remove(&id) {
                if self.by_pid.get(&e.process.pid) == Some(&id) {
                    self.by_pid.remove(&e.process.pid);
                }
            }
            self.evictions += 1;
        }
    }

    /// Drops one reference; at zero the entry goes, and with it its hold on its parent.
    fn release(&mut self, exec_id: &str) {
        let mut next = Some(exec_id.to_string());
        while let Some(id) = next.take() {
            let Some(entry) = self.by_exec_id.get_mut(&id) else { return };
            if entry.drop_ref() == 0 {
                let parent = std::mem::take(&mut entry.process.parent_exec_id);
                self.by_exec_id.remove(&id);
                if !parent.is_empty() {
                    next = Some(parent);
                }
            }
        }
    }

    /// Links a new process to its live parent, taking a reference on the parent.
    fn adopt(&mut self, child: &mut Process) {
        let parent_id = self.by_pid.get(&child.ppid).cloned();
        match parent_id.and_then(|id| self.by_exec_id.get_mut(&id)) {
            Some(parent) => {
                parent.add_ref();
                child.parent_exec_id = parent.process.exec_id.clone();
            }
            None => {
                self.misses += 1;
                child.flags.miss = true;
            }
        }
    }

    /// A fork: the child starts as a copy of its parent under its own exec id.
    pub fn on_clone(&mut self, pid: u32, ppid: u32, ktime: u64) {
        let mut child = match self.get_pid(ppid) {
            Some(parent) => parent.process.forked(&self.node, pid, ktime),
            None => Process {
                exec_id: super::exec_id(&self.node, ktime, pid),
                pid,
                tid: pid,
                ppid,
                start_ktime: ktime,
                flags: Flags { clone: true, ..Flags::default() },
                ..Process::default()
            },
        };
        self.adopt(&mut child);
        self.insert(child);
    }

    /// An exec: returns the new process and its parent as the event should show them.
    pub fn on_exec(&mut self, mut process: Process) -> (Snapshot, Option<Snapshot>) {
        // The first exec after a fork is flagged "clone", as Tetragon does.
        let after_fork = self
            .get_pid(process.pid)
            .is_some_and(|prev| prev.process.flags.clone && !prev.process.flags.execve);
        process.flags.clone = after_fork;
        // Take the new reference on the parent before the fork entry drops its own.
        self.adopt(&mut process);
        self.insert(process.clone());
        let parent = self.snapshot(&process.parent_exec_id);
        let refcnt = self.by_exec_id.get(&process.exec_id).map_or(1, |e| e.refcnt);
        (Snapshot { process, refcnt }, parent)
    }

    /// An exit: returns the process and its parent, then drops the process's references.
    pub fn on_exit(&mut self, pid: u32) -> Option<(Snapshot, Option<Snapshot>)> {
        let Some(exec_id) = self.by_pid.remove(&pid) else {
            self.misses += 1;
            return None;
        };
        let process = self.snapshot(&exec_id)?;
        let parent = match process.process.parent_exec_id.as_str() {
            "" => None,
            id => self.snapshot(id),
        };
        // The process's own reference; its parent's reference goes when its entry does.
        self.release(&exec_id);
        Some((process, parent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_(pid: u32, ppid: u32, ktime: u64, binary: &str) -> Process {
        Process {
            exec_id: super::super::exec_id("n", ktime, pid),
            pid,
            tid: pid,
            ppid,
            binary: binary.into(),
            start_ktime: ktime,
            flags: Flags { execve: true, ..Flags::default() },
            ..Process::default()
        }
    }

    #[test]
    fn fork_then_exec_links_to_the_forking_parent() {
        let mut c = ProcessCache::new("n", 100);
        c.seed(vec![proc_(1, 0, 1, "/sbin/init"), proc_(100, 1, 2, "/bin/sh")]);
        assert_eq!(c.get_pid(100).unwrap().process.parent_exec_id, exec_id_of(&c, 1));
        c.on_clone(101, 100, 10);
        let (child, parent) = c.on_exec(proc_(101, 100, 11, "/bin/echo"));
        let parent = parent.unwrap();
        assert_eq!(parent.process.binary, "/bin/sh");
        assert_eq!(child.process.parent_exec_id, parent.process.exec_id);
        assert_eq!(child.process.flags.render(), "execve clone");
        // sh holds itself and its child echo.
        assert_eq!(parent.refcnt, 2);
        let (gone, gone_parent) = c.on_exit(101).unwrap();
        assert_eq!(gone.process.binary, "/bin/echo");
        assert_eq!(gone_parent.unwrap().process.binary, "/bin/sh");
        assert_eq!(c.get_pid(100).unwrap().refcnt, 1);
        assert!(c.get_pid(101).is_none());
    }

    fn exec_id_of(c: &ProcessCache, pid: u32) -> String {
        c.get_pid(pid).unwrap().process.exec_id
    }

    #[test]
    fn exited_parent_stays_while_a_child_lives() {
        let mut c = ProcessCache::new("n", 100);
        c.seed(vec![proc_(1, 0, 1, "/sbin/init")]);
        c.on_clone(50, 1, 5);
        let (sh, _) = c.on_exec(proc_(50, 1, 6, "/bin/sh"));
        c.on_clone(51, 50, 7);
        c.on_exit(50).unwrap();
        // The child still resolves its exited parent.
        let (child, parent) = c.on_exit(51).unwrap();
        assert_eq!(child.process.parent_exec_id, sh.process.exec_id);
        assert_eq!(parent.unwrap().process.binary, "/bin/sh");
        // Nothing but init remains.
        assert_eq!(c.stats().size, 1);
    }

    #[test]
    fn exec_over_exec_replaces_the_image() {
        let mut c = ProcessCache::new("n", 100);
        c.seed(vec![proc_(1, 0, 1, "/sbin/init")]);
        c.on_clone(60, 1, 5);
        c.on_exec(proc_(60, 1, 6, "/bin/a"));
        let (b, _) = c.on_exec(proc_(60, 1, 7, "/bin/b"));
        assert_eq!(b.process.flags.render(), "execve");
        assert_eq!(c.stats().size, 2);
        assert_eq!(c.get_pid(1).unwrap().refcnt, 2);
        c.on_exit(60);
        assert_eq!(c.get_pid(1).unwrap().refcnt, 1);
        assert_eq!(c.stats().size, 1);
    }

    #[test]
    fn unknown_parent_is_a_counted_miss() {
        let mut c = ProcessCache::new("n", 100);
        let (p, parent) = c.on_exec(proc_(70, 69, 1, "/bin/x"));
        assert!(parent.is_none());
        assert!(p.process.flags.miss);
        assert!(c.on_exit(71).is_none());
        assert_eq!(c.stats().misses, 2);
    }

    fn render() -> Render {
        Render {
            clock: crate::clock::Clock::new(),
            host_ns: [0; crate::abi::NS_COUNT],
            with_caps: true,
            with_ns: true,
        }
    }

    #[test]
    fn shown_processes_follow_every_change() {
        let (mut c, r) = (ProcessCache::new("n", 100), render());
        c.seed(vec![proc_(1, 0, 1, "/sbin/init")]);
        c.on_clone(80, 1, 5);
        c.on_exec(proc_(80, 1, 6, "/bin/sh"));
        let shown =
            |c: &ProcessCache, pid| c.shown_pid(pid, &r).map(|s| {
                let p = &s.process;
                (p.binary.clone(), p.refcnt, p.flags.clone())
            });
        assert_eq!(
            shown(&c, 80),
            Some(("/bin/sh".into(), 1, "execve clone".into()))
        );
        let (first, again) = (c.shown_pid(80, &r).unwrap(), c.shown_pid(80, &r).unwrap());
        assert!(Arc::ptr_eq(&first, &again), "one rendering while nothing changes");
        assert_eq!(first.json(), serde_json::to_string(&first.process).unwrap());
        c.on_clone(81, 80, 7);
        assert!(!Arc::ptr_eq(&first, &c.shown_pid(80, &r).unwrap()), "a new one after a change");
        assert_eq!(shown(&c, 80).map(|s| s.1), Some(2), "a child's reference");
        assert_eq!(
            c.shown_pid(81, &r).map(|s| s.process.parent_exec_id.clone()),
            Some(exec_id_of(&c, 80))
        );
        c.on_exec(proc_(80, 1, 8, "/bin/ls"));
        assert_eq!(shown(&c, 80), Some(("/bin/ls".into(), 1, "execve".into())));
        c.on_exit(81);
        assert!(c.get_pid(81).is_none());
        assert_eq!(
            c.shown_pid(1, &r).map(|s| s.process.refcnt),
            Some(2),
            "init holds itself and ls"
        );
        c.on_exit(80);
        assert_eq!(c.shown_pid(1, &r).map(|s| s.process.refcnt), Some(1));
        assert!(c.shown("", &r).is_none());
    }

    #[test]
    fn capacity_is_bounded() {
        let mut c = ProcessCache::new("n", 10);
        for pid in 1..100 {
            c.on_exec(proc_(pid, 0, pid as u64, "/bin/x"));
        }
        assert!(c.stats().size <= 10);
        assert!(c.stats().evictions >= 89);
    }
}
