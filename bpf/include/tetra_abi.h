/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The kernel -> user-space event ABI. This header is the only definition of every
 * struct that crosses the boundary; agent/src/abi.rs mirrors it and a test checks the
 * mirror against the BTF of the compiled object (sizes and member offsets).
 *
 * Every message starts with struct tetra_msg_header. Padding is explicit so the layout
 * is the same for clang's BPF target and for x86_64/aarch64 user space.
 */
#ifndef TETRA_ABI_H
#define TETRA_ABI_H

/* Message opcodes (tetra_msg_header.op). */
#define TETRA_MSG_EXEC 1
#define TETRA_MSG_EXIT 2
#define TETRA_MSG_CLONE 3

/* Bounds of the variable part of an exec message. */
#define TETRA_FILENAME_MAX 1024
#define TETRA_ARGS_MAX 4096
#define TETRA_CWD_MAX 1024

/* tetra_msg_exec.exec_flags */
#define TETRA_EXEC_TRUNC_FILENAME (1 << 0)
#define TETRA_EXEC_TRUNC_ARGS (1 << 1)
#define TETRA_EXEC_TRUNC_CWD (1 << 2)
#define TETRA_EXEC_ERROR_ARGS (1 << 3)
#define TETRA_EXEC_ERROR_CWD (1 << 4)

/* Index of each namespace in tetra_msg_exec.ns_inum. */
enum tetra_ns {
	TETRA_NS_UTS = 0,
	TETRA_NS_IPC,
	TETRA_NS_MNT,
	TETRA_NS_PID,
	TETRA_NS_PID_FOR_CHILDREN,
	TETRA_NS_NET,
	TETRA_NS_TIME,
	TETRA_NS_TIME_FOR_CHILDREN,
	TETRA_NS_CGROUP,
	TETRA_NS_USER,
	TETRA_NS_COUNT,
};

/* Causes of events lost in the kernel, the index into the `drops` per-CPU array. */
enum tetra_drop {
	TETRA_DROP_RINGBUF_EXEC = 0,
	TETRA_DROP_RINGBUF_EXIT,
	TETRA_DROP_RINGBUF_CLONE,
	TETRA_DROP_COUNT,
};

struct tetra_msg_header {
	__u8 op;
	__u8 pad[3];
	__u32 size; /* bytes of the whole message, header included */
	__u64 ktime; /* bpf_ktime_get_ns() when the event happened */
};

/*
 * A successful execve. Followed by `filename_len` bytes of the path given to execve,
 * `args_len` bytes of the NUL-separated argv (argv[0] included), and `cwd_len` bytes of
 * the working directory; none of the three is NUL-terminated.
 */
struct tetra_msg_exec {
	struct tetra_msg_header hdr;
	__u32 pid; /* thread-group id in the initial pid namespace */
	__u32 tid;
	__u32 ppid; /* real parent's thread-group id */
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 auid;
	__u32 exec_flags;
	__u64 cap_permitted;
	__u64 cap_effective;
	__u64 cap_inheritable;
	__u64 cgroup_id;
	__u32 ns_inum[TETRA_NS_COUNT];
	__u16 filename_len;
	__u16 args_len;
	__u16 cwd_len;
	__u16 pad;
};

/* A thread group ended: the last thread of `pid` left do_exit. */
struct tetra_msg_exit {
	struct tetra_msg_header hdr;
	__u32 pid;
	__u32 tid;
	__u32 exit_code; /* wait status: (status << 8) | signal */
	__u32 pad;
};

/* A new thread group was forked; threads of an existing group are not reported. */
struct tetra_msg_clone {
	struct tetra_msg_header hdr;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 pad;
};

_Static_assert(sizeof(struct tetra_msg_header) == 16, "header layout");
_Static_assert(sizeof(struct tetra_msg_exec) == 128, "exec layout");
_Static_assert(sizeof(struct tetra_msg_exit) == 32, "exit layout");
_Static_assert(sizeof(struct tetra_msg_clone) == 32, "clone layout");
/* The exec strings are placed with a 13-bit mask (process.bpf.c). */
_Static_assert(TETRA_FILENAME_MAX + TETRA_ARGS_MAX + TETRA_CWD_MAX <= 8192, "exec strings");

#endif
