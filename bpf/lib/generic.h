/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * State shared by the generic policy programs (generic.bpf.c): the per-hook configuration
 * user space writes into .rodata before load, the per-CPU scratch an event is built in,
 * and the maps selectors look values up in.
 *
 * agent/src/sensors/generic/config.rs mirrors struct generic_config and the reader codes.
 */
#ifndef TETRA_GENERIC_H
#define TETRA_GENERIC_H

#include "common.h"
#include "path.h"

/* How the program finds its arguments (a compile-time constant per entry program). */
#define SRC_KPROBE 1 /* struct pt_regs, or the syscall's inner pt_regs */
#define SRC_TRACEPOINT 2 /* the tracepoint record, fields at byte offsets */
#define SRC_BTF 3 /* u64 array: raw_tp, tp_btf, lsm, fentry */
#define SRC_UPROBE 4 /* struct pt_regs of user space */
#define SRC_USDT 5 /* struct pt_regs of user space; arguments located by libbpf's USDT spec */

/* How an argument is read and recorded (generic_config.arg_reader). */
#define READ_U64 1
#define READ_S32 2
#define READ_U32 3
#define READ_S16 4
#define READ_U16 5
#define READ_S8 6
#define READ_U8 7
#define READ_STRING 8 /* NUL-terminated, user memory first, then kernel */
#define READ_CHAR_BUF 9 /* bytes, size from another argument */
#define READ_FD 10 /* int fd of the current task -> its file's path */
#define READ_FILE 11 /* struct file * */
#define READ_PATH 12 /* struct path * */
#define READ_FILENAME 13 /* struct filename * */
#define READ_BINPRM 14 /* struct linux_binprm * -> the file's path */
#define READ_SOCK 15 /* struct sock * */
#define READ_SOCKADDR 16 /* struct sockaddr *, user memory first */
#define READ_CRED 17 /* struct cred * */
#define READ_CAPS 18 /* kernel_cap_t *: its 64 bits, an integer */
#define READ_SKB 19 /* struct sk_buff * */
#define READ_IOVEC 20 /* struct iovec[count]: the buffers' bytes one after the other */
#define READ_NOP 21 /* not read, recorded as an empty TETRA_ARG_NONE */
#define READ_DENTRY 22 /* struct dentry *: its path up to its filesystem's root */
#define READ_KIOCB 23 /* struct kiocb * -> ki_filp's path */
#define READ_NET_DEVICE 24 /* struct net_device * -> its name */
#define READ_BPF_ATTR 25 /* union bpf_attr * of BPF_PROG_LOAD */
#define READ_PERF_EVENT 26 /* struct perf_event * */
#define READ_BPF_MAP 27 /* struct bpf_map * */
#define READ_USER_NS 28 /* struct user_namespace * */
#define READ_MODULE 29 /* struct module * */
#define READ_LOAD_INFO 30 /* struct load_info * (a module being loaded) */

#define MAX_SLOTS TETRA_ARGS_MAX_SLOTS
#define STR_MAX TETRA_ARG_STR_MAX
/* The return value's slot (selectors' RETURN_SLOT); per-slot arrays hold 8 so a slot
 * number from the blob is bounded by a mask. */
#define RET_SLOT MAX_SLOTS
#define SLOT_MASK 7

/* Selectors per hook, values per filter (selectors.h, and the integer pre-check here). */
#define MAX_SELECTORS 5
#define MAX_VALUES 16
/* Values of an integer filter (crds limits.rs MAX_NUMERIC_VALUES): the pre-check's. */
#define PRE_VALUES 4
/* Paths of a matchBinaries In/NotIn filter the pre-check compares inline. */
#define PRE_BIN_VALUES 8

struct generic_config {
	__u32 policy_id;
	__u32 hook_id;
	__u32 agent_tgid; /* never trace the agent itself */
	__u32 n_args;
	__u32 syscall; /* kprobe/fentry on a syscall wrapper: arguments are in the inner pt_regs */
	__u32 can_override; /* kprobe: the kernel has bpf_override_return */
	__u32 monitor_only; /* policy-mode monitor: report, never signal or override */
	__u32 needs_binary; /* some selector has matchBinaries: NEEDS_BINARY | NEEDS_BINARY_PATH */
	__u32 arg_reader[MAX_SLOTS];
	/* Call position of the argument, or its byte offset in a tracepoint record. */
	__u32 arg_pos[MAX_SLOTS];
	/* Tracepoint: size in bytes of the field. */
	__u32 arg_size[MAX_SLOTS];
	/* READ_CHAR_BUF: 1 + position (or offset) of the size argument, 0 = none. */
	__u32 size_pos[MAX_SLOTS];
	__u32 size_size[MAX_SLOTS];
	/* A return program runs too (return: true, or some returnCopy argument). */
	__u32 has_return;
	/* Reader of the return value (returnArg), 0 = not recorded. */
	__u32 ret_reader;
	/* Bit i: argument i is a char_buf/char_iovec read at return, as many bytes as the
	 * return value says. */
	__u32 return_copy;
	/* The policy uses FollowFD: fd arguments resolve through fd_follow only. */
	__u32 follow_fd;
	__u32 cgroup_filter; /* pod-scoped policy: only tasks whose cgroup is in policy_cgroups */
	/* Some Post of the hook asks for stack traces: without it the stack helpers are dead
	 * code the verifier never sees. */
	__u32 stack_traces;
	/* Added by socket tracking (TrackSock/UntrackSock): */
	/* The policy tracks sockets: a sock argument found in sock_owner attributes the event
	 * to the socket's owner instead of the current task. */
	__u32 sock_track;
	/* returnArgAction on the returned sock: ACT_TRACKSOCK, ACT_UNTRACKSOCK, or 0. */
	__u32 ret_sock_action;
	/* Bit i: argument i is a maxData char_buf (TETRA_ARG_DATA, bytes in data messages). */
	__u32 max_data;
	/* Some selector filters on the task (matchPIDs, matchNamespaces, matchCapabilities,
	 * matchBinaries): without one the first phase is skipped. */
	__u32 task_filters;
	/*
	 * The pre-check (pre_check() in generic.bpf.c), before anything is read but the
	 * arguments it compares: for each of the hook's pre_selectors selectors (0: no
	 * pre-check), one of its matchArgs filters with inline values on an argument read as
	 * an integer, as the blob encodes it (slot, operator, type code, values; a slot of
	 * MAX_SLOTS or more: none), and its matchBinaries In/NotIn filter (pre_bin_*).
	 */
	__u32 pre_selectors;
	__u32 pre_slot[MAX_SELECTORS];
	__u32 pre_op[MAX_SELECTORS];
	__u32 pre_type[MAX_SELECTORS];
	__u32 pre_count[MAX_SELECTORS];
	__u32 pre_pad; /* the values start 8-byte aligned */
	__u64 pre_values[MAX_SELECTORS][PRE_VALUES];
	/* Some selector has a binary part: the process's binaries entry is looked up. */
	__u32 pre_binaries;
	__u32 pre_bin_pad; /* the struct's size stays a multiple of 8, without hidden padding */
	/* Per selector: BIN_IN or BIN_NOT_IN (0: no binary part), and the numbers
	 * (binary_ids) of the filter's paths. */
	__u32 pre_bin_op[MAX_SELECTORS];
	__u32 pre_bin_count[MAX_SELECTORS];
	__u32 pre_bin_ids[MAX_SELECTORS][PRE_BIN_VALUES];
};

/*
 * `x & mask` that the compiler cannot drop when it already knows the bound: the verifier
 * does not always know it (values that cross a global function's arguments).
 */
static __always_inline __u64 bound(__u64 x, __u64 mask)
{
	asm volatile("%[x] &= %[m]" : [x] "+r"(x) : [m] "i"(mask));
	return x;
}

/* generic_config.needs_binary: a matchBinaries filter; one of them Prefix/Postfix, which
 * compares the path (In/NotIn compare the binary's number). */
#define NEEDS_BINARY 1
#define NEEDS_BINARY_PATH 2

/* Post parameter 3: which stack traces the event carries. */
#define STACK_KERNEL 1
#define STACK_USER 2
/* Most bytes one recorded argument takes in the message (a maxData char_buf's). */
#define ARG_RECORD_MAX \
	(sizeof(struct tetra_generic_arg) + sizeof(struct tetra_arg_data) + STR_MAX)

/* The args area is addressed through this mask; the array is larger so writes stay in. */
#define DATA_MASK 8191
#define BLOB_MASK 16383

struct str_key {
	__u32 map_id;
	__u8 s[STR_MAX * 2];
};

/* An LPM key holds at most 256 bytes after prefixlen: the map id takes 4 of them. */
#define PREFIX_MAX 252

struct prefix_key {
	__u32 prefixlen;
	__u32 map_id;
	__u8 s[PREFIX_MAX];
};

struct postfix_key {
	__u32 prefixlen;
	__u32 map_id;
	__u8 s[128];
};

struct int_key {
	__u32 map_id;
	__u32 pad;
	__u64 value;
};

/* SAddr/DAddr networks: LPM keys of map id then address (network byte order). */
struct addr4_key {
	__u32 prefixlen;
	__u32 map_id;
	__u8 addr[4];
};

struct addr6_key {
	__u32 prefixlen;
	__u32 map_id;
	__u8 addr[16];
};

/*
 * Post rateLimit: one entry per (selector, scope, argument values), holding the time of the
 * last event posted. The hook is implied (every hook has its own map). Each argument counts
 * with the first RATE_ARG_BYTES bytes of its recorded value.
 */
#define RATE_ARG_BYTES 40

struct rate_key {
	__u32 selector;
	__u32 scope; /* 0 thread, 1 process, 2 global */
	__u64 id; /* pid_tgid, tgid or 0, by scope */
	__u8 data[MAX_SLOTS * RATE_ARG_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1); /* set by user space */
	/* A size, not a BTF type: user space cuts the key to the hook's arguments. */
	__uint(key_size, sizeof(struct rate_key));
	__type(value, __u64);
} rate_limit SEC(".maps");

/* FollowFD: (process, fd) -> the path the fd was opened with. */
struct fd_key {
	__u32 tgid;
	__u32 fd;
};

struct fd_value {
	__u32 len;
	__u32 mode;
	__u8 path[STR_MAX];
};

/*
 * What an entry program leaves for the return program of the same call (keyed by
 * pid_tgid in the hook's own map): the recorded arguments and the selector outcome.
 * `data` comes first so the entry program can create the entry from its scratch data.
 */
struct stash {
	__u8 data[TETRA_GENERIC_DATA_MAX];
	__u64 rptr[MAX_SLOTS];
	__u64 rsize[MAX_SLOTS];
	__u32 aoff[MAX_SLOTS]; /* offset of each argument's header in data */
	__u32 selector;
	__u32 actions; /* blob offset of the matched selector's actions, 0 without selectors */
	__u32 action;
	__u32 post;
	__s64 retval;
	__u32 stack; /* STACK_KERNEL | STACK_USER of the matched Post */
	__u64 owner; /* the entry's attribution (generic_scratch.owner) */
};

struct generic_scratch {
	struct tetra_msg_generic msg;
	__u8 data[DATA_MASK + 1 + STR_MAX * 2];
	struct path_buf path;
	struct str_key key;
	struct prefix_key prefix;
	struct postfix_key postfix;
	struct int_key ikey;
	struct rate_key rate; /* before another member: reads into it may overrun by 23 bytes */
	struct addr6_key akey;
	struct binary_entry bin;
	/* Per recorded argument (and RET_SLOT): the integer value, or where its bytes are in
	 * data; vaux is the header's aux (inode mode of a path). */
	__u64 ival[SLOT_MASK + 1];
	__u32 voff[SLOT_MASK + 1];
	__u32 vlen[SLOT_MASK + 1];
	__u32 vkind[SLOT_MASK + 1];
	__u32 vaux[SLOT_MASK + 1];
	/* returnCopy arguments: the buffer's address, read again at return, and its size
	 * argument (an iovec count). */
	__u64 rptr[MAX_SLOTS];
	__u64 rsize[MAX_SLOTS];
	__u32 aoff[MAX_SLOTS]; /* offset of each argument's header in data */
	__u32 actions; /* offset of the matched selector's actions section */
	__u32 unfollowed; /* an fd argument is not followed (FollowFD): post nothing */
	struct fd_key fkey;
	struct fd_value fval;
	/* Pin the argument structs into the object's BTF for the layout test (agent abi.rs). */
	struct tetra_generic_arg btf_arg;
	struct tetra_arg_sock btf_sock;
	struct tetra_arg_sockaddr btf_sockaddr;
	struct tetra_arg_cred btf_cred;
	/* Raw bytes a reader parses (an skb's IP header, a sockaddr, an iovec): kept here, not on
	 * the stack, which 6.1 limits to 512 bytes for a whole call chain. */
	__u8 raw[40];
	struct tetra_arg_skb btf_skb;
	/* pid_tgid the event is attributed to: the owner of a tracked sock argument, 0 for
	 * the current task. */
	__u64 owner;
	/* A sock_owner entry being written (keys and values live in a map value). */
	__u64 sock_key;
	__u64 sock_val;
	struct tetra_arg_bpf_attr btf_bpf_attr;
	struct tetra_arg_perf_event btf_perf_event;
	struct tetra_arg_bpf_map btf_bpf_map;
	struct tetra_arg_user_ns btf_user_ns;
	struct tetra_arg_module btf_module;
	struct tetra_arg_data btf_data;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct generic_scratch);
} generic_heap SEC(".maps");

/*
 * The scratch map's value for this CPU. Global functions receive `s` as plain memory, and
 * kernels before 6.2 accept map keys only on the stack or in map values: code that passes
 * parts of the scratch as a map key looks the scratch up again (the same per-CPU value).
 */
static __always_inline struct generic_scratch *scratch_value(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&generic_heap, &zero);
}

/*
 * One data message of a maxData argument is built here. User space creates the map once
 * and every policy object shares it by fd (a per-CPU value is limited to 32 KiB).
 */
struct max_data_buf {
	struct tetra_msg_data msg;
	__u8 bytes[TETRA_DATA_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct max_data_buf);
} data_heap SEC(".maps");

/* The hook's selector blob (crds/src/compile/encoding.rs), written after load. */
struct blob {
	__u8 data[BLOB_MASK + 1 + 64];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct blob);
} filter SEC(".maps");

/* Never written: a source of zero bytes for padding string keys. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct str_key);
} zeros SEC(".maps");

/*
 * Selector values, keyed by the id of the compiled ValueMap they belong to. Exact strings
 * go into the map of their length bucket, zero-padded; sizes are set by user space.
 */
#define STR_EQ_MAP(n)                                        \
	struct {                                             \
		__uint(type, BPF_MAP_TYPE_HASH);             \
		__uint(max_entries, 1);                      \
		__uint(key_size, 4 + n);                     \
		__uint(value_size, 1);                       \
	} str_eq_##n SEC(".maps")

STR_EQ_MAP(32);
STR_EQ_MAP(64);
STR_EQ_MAP(128);
STR_EQ_MAP(256);
STR_EQ_MAP(512);
STR_EQ_MAP(1024);

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__type(key, struct prefix_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} str_prefix SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__type(key, struct postfix_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} str_postfix SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct int_key);
	__type(value, __u8);
} int_set SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__type(key, struct addr4_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} addr4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__type(key, struct addr6_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} addr6 SEC(".maps");
/*
 * Entry -> return hand-over. Not preallocated: an entry (6.5 KB) exists only while its call
 * is in flight, so the kernel memory follows the calls, not max_entries. A full map fails
 * the entry (counted, TETRA_DROP_STASH_FULL); entries of threads that died inside the call
 * are removed by user space (sensors/generic/sweep.rs).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1); /* set by user space when the hook has a return program */
	__type(key, __u64);
	__type(value, struct stash);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} stash SEC(".maps");

/*
 * Shared by the hooks of one policy through its fd (user space creates it, not
 * preallocated, like stash: one 1 KB entry per followed fd). A full map fails the follow
 * (counted, TETRA_DROP_FOLLOW_FD_FULL); user space removes the entries of exited processes.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct fd_key);
	__type(value, struct fd_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} fd_follow SEC(".maps");

/*
 * TrackSock: struct sock address -> pid_tgid of the process owning the socket. Events
 * whose sock argument is tracked are that process's, whatever task the kernel runs them
 * in (softirq, a kernel thread, another process holding the fd). Shared by the hooks of
 * one policy like fd_follow; an LRU, so sockets never untracked cannot fill it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, __u64);
} sock_owner SEC(".maps");

const volatile struct generic_config cfg = {};

#endif
