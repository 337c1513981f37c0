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
#define TETRA_MSG_GENERIC 4
#define TETRA_MSG_DATA 5

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
	TETRA_DROP_RINGBUF_GENERIC,
	TETRA_DROP_RINGBUF_DATA, /* a maxData chunk (struct tetra_msg_data) */
	TETRA_DROP_STASH_FULL, /* a return probe's call: its calls-in-flight map was full */
	TETRA_DROP_FOLLOW_FD_FULL, /* a FollowFD/CopyFD: the policy's followed-fd map was full */
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

/*
 * A policy hook fired and one of its selectors matched (a call no selector matches sends
 * nothing). Followed by `args_len` bytes: for each recorded argument, in the hook's arg
 * order, then the return value when the hook records one (returnArg; n_args counts it),
 * a struct tetra_generic_arg and then `len` bytes of value:
 *   TETRA_ARG_INT      8 bytes, the value sign- or zero-extended to 64 bits by its type
 *   TETRA_ARG_BYTES    the bytes of a string / char_buf (no NUL); aux = size before truncation
 *   TETRA_ARG_PATH     the path as d_path() renders it; aux = inode mode (0 if unknown)
 *   TETRA_ARG_SOCK     struct tetra_arg_sock
 *   TETRA_ARG_SOCKADDR struct tetra_arg_sockaddr
 *   TETRA_ARG_CRED     struct tetra_arg_cred
 *   TETRA_ARG_SKB      struct tetra_arg_skb
 *   TETRA_ARG_BPF_ATTR struct tetra_arg_bpf_attr
 *   TETRA_ARG_PERF_EVENT struct tetra_arg_perf_event
 *   TETRA_ARG_BPF_MAP  struct tetra_arg_bpf_map
 *   TETRA_ARG_USER_NS  struct tetra_arg_user_ns
 *   TETRA_ARG_MODULE   struct tetra_arg_module
 *   TETRA_ARG_DATA     a maxData char_buf: struct tetra_arg_data, then its first bytes
 *                      (at most TETRA_ARG_STR_MAX); the rest came before the event in
 *                      struct tetra_msg_data messages
 *   TETRA_ARG_NONE     no value (len 0): the argument could not be read (flags say why),
 *                      or it is not read at all (a nop argument, flags 0)
 * The fixed-size names below are NUL-terminated unless they fill their array.
 */
#define TETRA_ARGS_MAX_SLOTS 5
#define TETRA_ARG_STR_MAX 1024 /* longest string/path value recorded */
#define TETRA_GENERIC_DATA_MAX 6144 /* largest args_len */
#define TETRA_STACK_MAX 1016 /* bytes of one stack trace: 127 frames, the kernel's maximum */

enum tetra_arg_kind {
	TETRA_ARG_NONE = 0,
	TETRA_ARG_INT = 1,
	TETRA_ARG_BYTES = 2,
	TETRA_ARG_PATH = 3,
	TETRA_ARG_SOCK = 4,
	TETRA_ARG_SOCKADDR = 5,
	TETRA_ARG_CRED = 6,
	TETRA_ARG_SKB = 7,
	TETRA_ARG_BPF_ATTR = 8,
	TETRA_ARG_PERF_EVENT = 9,
	TETRA_ARG_BPF_MAP = 10,
	TETRA_ARG_USER_NS = 11,
	TETRA_ARG_MODULE = 12,
	TETRA_ARG_DATA = 13,
};

/* tetra_generic_arg.flags */
#define TETRA_ARG_TRUNCATED (1 << 0)
#define TETRA_ARG_READ_ERROR (1 << 1)

struct tetra_generic_arg {
	__u16 len; /* bytes of value after this header */
	__u8 kind; /* enum tetra_arg_kind */
	__u8 flags;
	__u32 aux;
};

struct tetra_arg_sock {
	__u64 cookie;
	__u32 mark;
	__u32 priority;
	__u16 family;
	__u16 type;
	__u16 protocol;
	__u16 sport; /* host byte order */
	__u16 dport; /* host byte order */
	__u8 state;
	__u8 pad;
	__u32 pad2;
	__u8 saddr[16]; /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
};

struct tetra_arg_sockaddr {
	__u16 family;
	__u16 port; /* host byte order */
	__u32 pad;
	__u8 addr[16];
};

/* struct cred: ids, securebits, capability sets, and its user namespace. */
struct tetra_arg_cred {
	__u32 uid, gid, euid, egid, suid, sgid, fsuid, fsgid;
	__u32 securebits;
	__u32 userns_level;
	__u32 userns_uid; /* owner of the user namespace */
	__u32 userns_gid;
	__u32 userns_inum;
	__u32 pad;
	__u64 cap_permitted, cap_effective, cap_inheritable;
};

/* struct sk_buff: its IP packet's addresses and ports (TCP/UDP), as sock has them. */
struct tetra_arg_skb {
	__u32 hash;
	__u32 len;
	__u32 priority;
	__u32 mark;
	__u16 family; /* AF_INET or AF_INET6 from the IP header's version, else 0 */
	__u16 proto; /* IP protocol */
	__u16 sport; /* host byte order */
	__u16 dport;
	__u8 saddr[16]; /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
};

/* union bpf_attr of BPF_PROG_LOAD: the program being loaded. */
struct tetra_arg_bpf_attr {
	__u32 prog_type;
	__u32 insn_cnt;
	char prog_name[16];
};

/* struct perf_event: its attr; kprobe_func is the function of a kprobe PMU event. */
struct tetra_arg_perf_event {
	__u64 config;
	__u64 probe_offset;
	__u32 type;
	__u32 pad;
	char kprobe_func[128];
};

struct tetra_arg_bpf_map {
	__u32 map_type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	char name[16];
};

struct tetra_arg_user_ns {
	__u32 level; /* 0: the initial user namespace */
	__u32 uid; /* owner */
	__u32 gid;
	__u32 inum;
};

#define TETRA_MODULE_SIG_UNKNOWN 2 /* tetra_arg_module.sig_ok: no CONFIG_MODULE_SIG */

/* struct module: name, taint bits (1 << TAINT_*), and whether its signature checked. */
struct tetra_arg_module {
	__u64 taints;
	__u32 sig_ok; /* 0, 1, or TETRA_MODULE_SIG_UNKNOWN */
	__u32 pad;
	char name[56];
};

/*
 * maxData: a char_buf is recorded up to TETRA_DATA_MAX bytes. The event carries the first
 * TETRA_ARG_STR_MAX inline (the selectors see those); the bytes after them go to the ring
 * buffer just before the event, in messages of at most TETRA_DATA_CHUNK bytes, in order.
 * The messages of one argument share `id` and the thread id of the event.
 */
#define TETRA_DATA_MAX 327360
#define TETRA_DATA_CHUNK 32736

struct tetra_arg_data {
	__u64 id; /* of the data messages that carry the bytes after the inline ones */
	__u64 size; /* the buffer's real size (the size argument, or the return value) */
	__u32 sent; /* bytes put in data messages; inline + sent < min(size, DATA_MAX): incomplete */
	__s32 error; /* 0, or what stopped the sending: a read error, or -EAGAIN (ring buffer full) */
};

/* Followed by hdr.size - sizeof(struct tetra_msg_data) bytes of the buffer. */
struct tetra_msg_data {
	struct tetra_msg_header hdr;
	__u32 tid; /* thread of the event, as tetra_msg_generic.tid */
	__u32 offset; /* of the first byte in the whole buffer (the inline bytes come first) */
	__u64 id; /* tetra_arg_data.id */
};

struct tetra_msg_generic {
	struct tetra_msg_header hdr;
	__u32 pid;
	__u32 tid;
	__u32 policy_id; /* set by user space per loaded policy */
	__u32 hook_id; /* index of the hook in the compiled policy */
	__u32 selector; /* index of the selector that matched */
	__u32 action; /* KprobeAction code of what was done: Post 1, Sigkill 3, Override 5, Signal 10 */
	__s64 retval; /* Override: the value forced; otherwise 0 */
	__u32 n_args;
	__u32 args_len;
	/* Sent by a return probe: KprobeAction code of what its return actions did (Post 1,
	 * Sigkill 3, Signal 10); 0 for an event of an entry probe. */
	__u32 return_action;
	/* Post with kernelStackTrace/userStackTrace: bytes of return addresses (u64 each,
	 * innermost first) after the arguments, the kernel stack's then the user stack's. */
	__u16 kernel_stack_len;
	__u16 user_stack_len;
};

_Static_assert(sizeof(struct tetra_msg_header) == 16, "header layout");
_Static_assert(sizeof(struct tetra_msg_exec) == 128, "exec layout");
_Static_assert(sizeof(struct tetra_msg_exit) == 32, "exit layout");
_Static_assert(sizeof(struct tetra_msg_clone) == 32, "clone layout");
_Static_assert(sizeof(struct tetra_msg_generic) == 64, "generic layout");
_Static_assert(sizeof(struct tetra_generic_arg) == 8, "generic arg layout");
_Static_assert(sizeof(struct tetra_arg_sock) == 64, "sock layout");
_Static_assert(sizeof(struct tetra_arg_sockaddr) == 24, "sockaddr layout");
_Static_assert(sizeof(struct tetra_arg_cred) == 80, "cred layout");
_Static_assert(sizeof(struct tetra_arg_skb) == 56, "skb layout");
_Static_assert(sizeof(struct tetra_arg_bpf_attr) == 24, "bpf_attr layout");
_Static_assert(sizeof(struct tetra_arg_perf_event) == 152, "perf_event layout");
_Static_assert(sizeof(struct tetra_arg_bpf_map) == 32, "bpf_map layout");
_Static_assert(sizeof(struct tetra_arg_user_ns) == 16, "user_ns layout");
_Static_assert(sizeof(struct tetra_arg_module) == 72, "module layout");
_Static_assert(sizeof(struct tetra_arg_data) == 24, "data arg layout");
_Static_assert(sizeof(struct tetra_msg_data) == 32, "data layout");
/* A data message is built in one per-CPU map value, which may not pass 32 KiB. */
_Static_assert(sizeof(struct tetra_msg_data) + TETRA_DATA_CHUNK == 32768, "data chunk");
_Static_assert(TETRA_DATA_MAX == 10 * TETRA_DATA_CHUNK, "data chunks");
/* The exec strings are placed with a 13-bit mask (process.bpf.c). */
_Static_assert(TETRA_FILENAME_MAX + TETRA_ARGS_MAX + TETRA_CWD_MAX <= 8192, "exec strings");

#endif
