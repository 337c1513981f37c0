// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Process lifecycle: exec, fork and exit from the sched_process_* BTF tracepoints.
 * Always on; feeds the agent's process cache. BTF tracepoints work on kernels without
 * kprobes, which is why the lifecycle does not depend on kprobes as Tetragon's does.
 */
#include "lib/common.h"
#include "lib/path.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* An exec message under construction: the header, then room for its three strings. */
struct exec_scratch {
	struct tetra_msg_exec msg;
	char data[TETRA_FILENAME_MAX + TETRA_ARGS_MAX + TETRA_CWD_MAX];
	struct path_buf cwd;
	struct binary_entry bin;
	struct exec_state state;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_scratch);
} exec_heap SEC(".maps");

/*
 * Pins the other ABI structs into this object's BTF, so user space can check its view
 * of them against what the compiler laid out (agent/src/abi.rs).
 */
struct tetra_abi_anchor {
	struct tetra_msg_exit exit;
	struct tetra_msg_clone clone;
};
const volatile struct tetra_abi_anchor tetra_abi_anchor = {};

static __always_inline __u32 ns_inum(struct ns_common *ns)
{
	return ns ? BPF_CORE_READ(ns, inum) : 0;
}

static __always_inline void read_namespaces(struct task_struct *task, __u32 *inum)
{
	struct nsproxy *nsp = BPF_CORE_READ(task, nsproxy);
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	__u32 level = BPF_CORE_READ(pid, level);

	inum[TETRA_NS_UTS] = BPF_CORE_READ(nsp, uts_ns, ns.inum);
	inum[TETRA_NS_IPC] = BPF_CORE_READ(nsp, ipc_ns, ns.inum);
	inum[TETRA_NS_MNT] = BPF_CORE_READ(nsp, mnt_ns, ns.inum);
	inum[TETRA_NS_PID] = BPF_CORE_READ(pid, numbers[level & 31].ns, ns.inum);
	inum[TETRA_NS_PID_FOR_CHILDREN] = BPF_CORE_READ(nsp, pid_ns_for_children, ns.inum);
	inum[TETRA_NS_NET] = BPF_CORE_READ(nsp, net_ns, ns.inum);
	if (bpf_core_field_exists(nsp->time_ns)) {
		inum[TETRA_NS_TIME] = ns_inum(&BPF_CORE_READ(nsp, time_ns)->ns);
		inum[TETRA_NS_TIME_FOR_CHILDREN] =
			ns_inum(&BPF_CORE_READ(nsp, time_ns_for_children)->ns);
	}
	inum[TETRA_NS_CGROUP] = BPF_CORE_READ(nsp, cgroup_ns, ns.inum);
	inum[TETRA_NS_USER] = BPF_CORE_READ(task, cred, user_ns, ns.inum);
}

static __always_inline void read_creds(struct task_struct *task, struct tetra_msg_exec *m)
{
	const struct cred *cred = BPF_CORE_READ(task, cred);

	m->uid = BPF_CORE_READ(cred, uid.val);
	m->gid = BPF_CORE_READ(cred, gid.val);
	m->euid = BPF_CORE_READ(cred, euid.val);
	/* kernel_cap_t is u32[2] before 6.3 and one u64 after; both are 8 bytes. */
	bpf_probe_read_kernel(&m->cap_permitted, 8, &cred->cap_permitted);
	bpf_probe_read_kernel(&m->cap_effective, 8, &cred->cap_effective);
	bpf_probe_read_kernel(&m->cap_inheritable, 8, &cred->cap_inheritable);
	m->auid = bpf_core_field_exists(task->loginuid) ? BPF_CORE_READ(task, loginuid.val)
						      : (__u32)-1;
}

/* The execve path of process `tgid` into the binaries map, when absolute, with its number. */
static __always_inline void remember_binary(struct exec_scratch *s, __u32 tgid,
					    const char *filename)
{
	long n;

	__builtin_memset(s->bin.path, 0, BIN_MAX); /* the binary_ids key's padding */
	n = bpf_probe_read_kernel_str(s->bin.path, BIN_MAX, filename);
	if (n <= 1 || s->bin.path[0] != '/') {
		bpf_map_delete_elem(&binaries, &tgid);
		return;
	}
	s->bin.len = n - 1;
	s->bin.pad = 0;
	/* Its matchBinaries number, once per exec rather than per hooked call. */
	s->bin.id = 0;
	s->bin.gen = 0; /* generation 0: no path registered, so id 0 is right */
	resolve_binary_id(&s->bin);
	bpf_map_update_elem(&binaries, &tgid, &s->bin, BPF_ANY);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tetra_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0;
	struct exec_scratch *s = bpf_map_lookup_elem(&exec_heap, &zero);

	if (!s)
		return 0;
	struct tetra_msg_exec *m = &s->msg;
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	m->hdr.op = TETRA_MSG_EXEC;
	m->hdr.ktime = bpf_ktime_get_ns();
	m->pid = pid_tgid >> 32;
	m->tid = (__u32)pid_tgid;
	m->ppid = BPF_CORE_READ(task, real_parent, tgid);
	m->exec_flags = 0;
	m->cgroup_id = bpf_get_current_cgroup_id();
	read_creds(task, m);
	read_namespaces(task, m->ns_inum);
	__builtin_memcpy(s->state.ns, m->ns_inum, sizeof(s->state.ns));
	s->state.caps[0] = m->cap_effective;
	s->state.caps[1] = m->cap_inheritable;
	s->state.caps[2] = m->cap_permitted;
	__u32 tgid = pid_tgid >> 32;

	bpf_map_update_elem(&exec_states, &tgid, &s->state, BPF_ANY);

	/* The path as given to execve; user space makes a relative one absolute. */
	const char *filename = BPF_CORE_READ(bprm, filename);
	long n = bpf_probe_read_kernel_str(s->data, TETRA_FILENAME_MAX, filename);
	__u32 off = 0;

	if (n > 0) {
		off = (n - 1) & (TETRA_FILENAME_MAX - 1);
		if (n == TETRA_FILENAME_MAX)
			m->exec_flags |= TETRA_EXEC_TRUNC_FILENAME;
	}
	m->filename_len = off;
	remember_binary(s, pid_tgid >> 32, filename);

	/* argv lives in the new image's memory, NUL-separated. */
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	__u64 arg_start = BPF_CORE_READ(mm, arg_start);
	__u64 arg_end = BPF_CORE_READ(mm, arg_end);
	__u64 args_len = arg_end > arg_start ? arg_end - arg_start : 0;

	if (args_len > TETRA_ARGS_MAX) {
		args_len = TETRA_ARGS_MAX;
		m->exec_flags |= TETRA_EXEC_TRUNC_ARGS;
	}
	if (args_len && bpf_probe_read_user(&s->data[off], args_len & (TETRA_ARGS_MAX * 2 - 1),
					    (void *)arg_start) < 0) {
		args_len = 0;
		m->exec_flags |= TETRA_EXEC_ERROR_ARGS;
	}
	m->args_len = args_len;
	off += args_len;

	/* The working directory, relative to the task's root as d_path() renders it. */
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	struct path pwd = BPF_CORE_READ(fs, pwd);
	bool truncated;
	__u32 cwd_len = walk_path(pwd.dentry, pwd.mnt, &fs->root, &s->cwd, &truncated);

	if (truncated)
		m->exec_flags |= TETRA_EXEC_TRUNC_CWD;
	if (cwd_len > TETRA_CWD_MAX)
		cwd_len = TETRA_CWD_MAX;
	/* A power-of-two mask the verifier can follow; the check keeps the value exact. */
	if (off > TETRA_FILENAME_MAX + TETRA_ARGS_MAX)
		return 0;
	off &= 8192 - 1;
	if (bpf_probe_read_kernel(&s->data[off], cwd_len & (TETRA_CWD_MAX * 2 - 1),
				  &s->cwd.data[(PATH_BUF_SIZE - cwd_len) & PATH_BUF_MASK]) < 0) {
		cwd_len = 0;
		m->exec_flags |= TETRA_EXEC_ERROR_CWD;
	}
	m->cwd_len = cwd_len;
	off += cwd_len;

	__u32 size = sizeof(*m) + off;

	if (size > sizeof(*m) + sizeof(s->data))
		return 0;
	m->hdr.size = size;
	submit(m, size, TETRA_DROP_RINGBUF_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(tetra_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 pid = BPF_CORE_READ(child, tgid);
	__u32 tid = BPF_CORE_READ(child, pid);

	if (pid != tid)
		return 0; /* a new thread, not a new process */
	struct tetra_msg_clone m = {
		.hdr = { .op = TETRA_MSG_CLONE, .size = sizeof(m), .ktime = bpf_ktime_get_ns() },
		.pid = pid,
		.tid = tid,
		.ppid = BPF_CORE_READ(parent, tgid),
	};
	/* The child runs its parent's executable until it execs. */
	struct binary_entry *bin = bpf_map_lookup_elem(&binaries, &m.ppid);

	if (bin)
		bpf_map_update_elem(&binaries, &pid, bin, BPF_ANY);
	/* ... and keeps its exec-time namespaces and capabilities. */
	struct exec_state *state = bpf_map_lookup_elem(&exec_states, &m.ppid);

	if (state)
		bpf_map_update_elem(&exec_states, &pid, state, BPF_ANY);

	submit(&m, sizeof(m), TETRA_DROP_RINGBUF_CLONE);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tetra_exit, struct task_struct *task)
{
	/* do_exit() has already dropped this thread from signal->live. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	struct tetra_msg_exit m = {
		.hdr = { .op = TETRA_MSG_EXIT, .size = sizeof(m), .ktime = bpf_ktime_get_ns() },
		.pid = BPF_CORE_READ(task, tgid),
		.tid = BPF_CORE_READ(task, pid),
		.exit_code = BPF_CORE_READ(task, exit_code),
	};

	bpf_map_delete_elem(&binaries, &m.pid);
	bpf_map_delete_elem(&exec_states, &m.pid);

	submit(&m, sizeof(m), TETRA_DROP_RINGBUF_EXIT);
	return 0;
}
