/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * In-kernel evaluation of the selector blob written by user space (the format is
 * documented in crds/src/compile/encoding.rs). Selectors are ORed, the first match wins;
 * the filters inside one are ANDed. User space refuses to load a blob using a filter this
 * file does not evaluate, so an empty section is all the kernel ever sees for those.
 * Return args and actions are evaluated by the return program (generic.bpf.c) on the
 * selector the entry matched.
 */
#ifndef TETRA_SELECTORS_H
#define TETRA_SELECTORS_H

#include "generic.h"

#define MAX_FILTERS 5
#define MAX_ACTIONS 3

/* Operator codes (crds op_code: position in the CRD enum plus one). */
#define OP_EQUAL 1
#define OP_NOT_EQUAL 2
#define OP_PREFIX 3
#define OP_NOT_PREFIX 4
#define OP_POSTFIX 5
#define OP_NOT_POSTFIX 6
#define OP_GT 9
#define OP_LT 10
#define OP_MASK 11
/* Socket operators, SPort 12 .. NotDAddr 23: each odd code is the negation of the one
 * before it. */
#define OP_SPORT 12
#define OP_SPORT_PRIV 14
#define OP_DPORT 16
#define OP_DPORT_PRIV 18
#define OP_SADDR 20
#define OP_DADDR 22
#define OP_PROTOCOL 24
#define OP_FAMILY 25
#define OP_STATE 26
#define OP_IN_MAP 27
#define OP_NOT_IN_MAP 28

/* Binary operators. */
#define BIN_IN 1
#define BIN_NOT_IN 2
#define BIN_PREFIX 3
#define BIN_NOT_PREFIX 4
#define BIN_POSTFIX 5
#define BIN_NOT_POSTFIX 6

/* Action codes (KprobeAction numbers). */
#define ACT_POST 1
#define ACT_FOLLOWFD 2
#define ACT_SIGKILL 3
#define ACT_UNFOLLOWFD 4
#define ACT_OVERRIDE 5
#define ACT_COPYFD 6
#define ACT_GETURL 7
#define ACT_DNSLOOKUP 8
#define ACT_NOPOST 9
#define ACT_SIGNAL 10
#define ACT_TRACKSOCK 11
#define ACT_UNTRACKSOCK 12

static __always_inline __u32 rd32(const struct blob *b, __u32 off)
{
	return *(const __u32 *)&b->data[off & BLOB_MASK];
}

static __always_inline __u64 rd64(const struct blob *b, __u32 off)
{
	return (__u64)rd32(b, off) | ((__u64)rd32(b, off + 4) << 32);
}

/* Is the string `src[0..len)` (kernel memory) in exact-string map `map_id`? */
static __always_inline bool str_in_map(struct generic_scratch *s, const void *src, __u32 len,
				       __u32 map_id)
{
	struct str_key *k = &s->key;
	__u32 zero = 0;
	void *z = bpf_map_lookup_elem(&zeros, &zero);
	__u32 bucket;

	if (!z || len > STR_MAX)
		return false;
	bucket = len <= 32 ? 32 : len <= 64 ? 64 : len <= 128 ? 128 : len <= 256 ? 256
		 : len <= 512 ? 512 : 1024;
	k->map_id = map_id;
	bpf_probe_read_kernel(k->s, bound(bucket, STR_MAX * 2 - 1), z);
	if (len)
		bpf_probe_read_kernel(k->s, bound(len, STR_MAX * 2 - 1), src);
	switch (bucket) {
	case 32: return bpf_map_lookup_elem(&str_eq_32, k) != NULL;
	case 64: return bpf_map_lookup_elem(&str_eq_64, k) != NULL;
	case 128: return bpf_map_lookup_elem(&str_eq_128, k) != NULL;
	case 256: return bpf_map_lookup_elem(&str_eq_256, k) != NULL;
	case 512: return bpf_map_lookup_elem(&str_eq_512, k) != NULL;
	default: return bpf_map_lookup_elem(&str_eq_1024, k) != NULL;
	}
}

static __always_inline bool str_has_prefix(struct generic_scratch *s, const void *src, __u32 len,
					   __u32 map_id)
{
	struct prefix_key *k = &s->prefix;

	if (len > PREFIX_MAX)
		len = PREFIX_MAX;
	k->prefixlen = 32 + len * 8;
	k->map_id = map_id;
	/* A fixed size the verifier accepts; only prefixlen bits of the key are compared and
	 * the source (scratch data or the binary path) has room past the string. */
	bpf_probe_read_kernel(k->s, PREFIX_MAX, src);
	return bpf_map_lookup_elem(&str_prefix, k) != NULL;
}

static __always_inline bool str_has_postfix(struct generic_scratch *s, const void *src,
					    __u32 len, __u32 map_id)
{
	struct postfix_key *k = &s->postfix;
	__u8 c;

	if (len > 128)
		len = 128;
	k->prefixlen = 32 + len * 8;
	k->map_id = map_id;
	for (__u32 i = 0; i < 128; i++) {
		if (i >= len)
			break;
		c = 0;
		bpf_probe_read_kernel(&c, 1, src + (len - 1 - i));
		k->s[i & 127] = c;
	}
	return bpf_map_lookup_elem(&str_postfix, k) != NULL;
}

static __always_inline bool int_in_map(struct generic_scratch *s, __u64 v, __u32 map_id)
{
	s->ikey.map_id = map_id;
	s->ikey.pad = 0;
	s->ikey.value = v;
	return bpf_map_lookup_elem(&int_set, &s->ikey) != NULL;
}

/*
 * The evaluation is split into global functions: the verifier checks each once, on its
 * own, instead of once per path through the selectors (which exceeds its budget).
 *
 * Is the string (the executable when `how` has FROM_BIN, else data[off..off+len)) in value
 * map `map_id`, compared as `how & 0xff` (OP_EQUAL exact, OP_PREFIX, OP_POSTFIX)?
 */
#define FROM_BIN 0x100

__noinline int str_lookup(__u32 how, __u32 off, __u32 len, __u32 map_id)
{
	__u32 class = how & 0xff;
	struct generic_scratch *s = scratch_value();

	if (!s)
		return 0;
	const void *src = how & FROM_BIN ? (const void *)s->bin.path
					 : (const void *)&s->data[off & DATA_MASK];

	if (class == OP_PREFIX)
		return str_has_prefix(s, src, len, map_id);
	if (class == OP_POSTFIX)
		return str_has_postfix(s, src, len, map_id);
	return str_in_map(s, src, len, map_id);
}

static __always_inline bool is_signed(__u32 type_code)
{
	/* int sint8 int8 sint16 int16 sint32 int32 long sint64 int64 */
	return type_code == 1 || type_code == 2 || type_code == 3 || type_code == 5 ||
	       type_code == 6 || type_code == 9 || type_code == 10 || type_code == 14 ||
	       type_code == 15 || type_code == 16;
}

/*
 * An integer operator with one inline value (NotEqual compares as Equal; the caller
 * negates the result over all values). Shared by matchArgs and the pre-check.
 */
static __always_inline bool int_op_holds(__u32 op, bool sig, __u64 x, __u64 v)
{
	if (op == OP_EQUAL || op == OP_NOT_EQUAL)
		return x == v;
	if (op == OP_GT)
		return sig ? (__s64)x > (__s64)v : x > v;
	if (op == OP_LT)
		return sig ? (__s64)x < (__s64)v : x < v;
	if (op == OP_MASK)
		return (x & v) != 0;
	return false;
}

/*
 * Is the address (4 or 16 bytes, network order) in address map `map_id`? The key is built
 * in the scratch: the stack is short here (and 6.1 wants keys on it or in map values). An
 * IPv4 key is the first bytes of an IPv6 one.
 */
static __always_inline bool addr_in_map(struct generic_scratch *s, __u16 family,
					const __u8 *addr, __u32 map_id)
{
	struct addr6_key *k = &s->akey;

	k->map_id = map_id;
	if (family == AF_INET) {
		k->prefixlen = 32 + 32;
		__builtin_memcpy(k->addr, addr, 4);
		return bpf_map_lookup_elem(&addr4, k) != NULL;
	}
	if (family == AF_INET6) {
		k->prefixlen = 32 + 128;
		__builtin_memcpy(k->addr, addr, 16);
		return bpf_map_lookup_elem(&addr6, k) != NULL;
	}
	return false;
}

/* The offset after the matchArgs entry at `off` (layout in eval_arg_filter). */
static __always_inline __u32 arg_filter_end(const struct blob *b, __u32 off)
{
	__u32 kind = rd32(b, off + 12), n = rd32(b, off + 16);

	return (off + 20 + n * (kind == 1 ? 8 : kind == 2 ? 4 : 0)) & BLOB_MASK;
}

static __always_inline bool is_sock_op(const struct blob *b, __u32 off)
{
	__u32 op = rd32(b, off + 4);

	return op >= OP_SPORT && op <= OP_STATE;
}

/*
 * A socket operator on a sock, skb or sockaddr argument (entry at `off`, as for
 * eval_arg_filter; the same result). A sockaddr has one address and port, which the S*
 * operators compare. Addresses come with two map ids, the IPv4 networks then the IPv6
 * ones. Called from eval_selector directly: under eval_arg_filter the combined stack of
 * the call chain would pass 512 bytes.
 */
__noinline int eval_sock_filter(const struct blob *b, __u32 off)
{
	struct generic_scratch *s = scratch_value();

	if (!s || !b)
		return -1;
	int next = arg_filter_end(b, off);
	__u32 slot = rd32(b, off), op = rd32(b, off + 4), n = rd32(b, off + 16);
	__u32 id0 = rd32(b, off + 20), id1 = rd32(b, off + 24);

	if (slot >= MAX_SLOTS)
		return -1;
	__u32 voff = s->voff[slot] & DATA_MASK;
	__u16 family, sport, dport = 0, protocol = 0, state = 0;
	const __u8 *saddr, *daddr;

	if (s->vkind[slot] == TETRA_ARG_SOCK) {
		const struct tetra_arg_sock *k = (const void *)&s->data[voff];

		family = k->family;
		sport = k->sport;
		dport = k->dport;
		protocol = k->protocol;
		state = k->state;
		saddr = k->saddr;
		daddr = k->daddr;
	} else if (s->vkind[slot] == TETRA_ARG_SKB) {
		const struct tetra_arg_skb *k = (const void *)&s->data[voff];

		family = k->family;
		sport = k->sport;
		dport = k->dport;
		protocol = k->proto;
		saddr = k->saddr;
		daddr = k->daddr;
	} else if (s->vkind[slot] == TETRA_ARG_SOCKADDR) {
		const struct tetra_arg_sockaddr *a = (const void *)&s->data[voff];

		family = a->family;
		sport = a->port;
		saddr = a->addr;
		daddr = a->addr;
	} else {
		return -1; /* unread argument: matches nothing */
	}
	if (op >= OP_PROTOCOL) {
		__u16 v = op == OP_PROTOCOL ? protocol : op == OP_FAMILY ? family : state;

		return n && int_in_map(s, v, id0) ? next : -1;
	}
	__u32 base = op & ~1u;
	bool found;

	if (base == OP_SPORT || base == OP_DPORT)
		found = n && int_in_map(s, base == OP_SPORT ? sport : dport, id0);
	else if (base == OP_SPORT_PRIV || base == OP_DPORT_PRIV)
		found = (base == OP_SPORT_PRIV ? sport : dport) < 1024;
	else if (n == 2)
		found = addr_in_map(s, family, base == OP_SADDR ? saddr : daddr,
				    family == AF_INET ? id0 : id1);
	else
		return -1;
	return ((op & 1) ? !found : found) ? next : -1;
}

/*
 * One matchArgs entry at `off`: slot | op | type_code | kind | n | values. Returns the
 * offset of the next entry when it matches, -1 when not. `s` is the scratch as plain
 * memory, enough for comparing integers; a map lookup looks the scratch up again (m).
 */
__noinline int eval_arg_filter(struct generic_scratch *s, const struct blob *b, __u32 off)
{
	if (!s || !b)
		return -1;
	__u32 slot = rd32(b, off), op = rd32(b, off + 4), ty = rd32(b, off + 8);
	__u32 kind = rd32(b, off + 12), n = rd32(b, off + 16);
	__u32 vals = off + 20;
	__u32 next = arg_filter_end(b, off);
	bool found = false, ok;

	if (slot > RET_SLOT || n > MAX_VALUES)
		return -1;
	slot &= SLOT_MASK;
	__u32 vkind = s->vkind[slot];
	__u64 x = s->ival[slot];

	if (kind == 1) {
		bool sig = is_signed(ty);

		for (__u32 j = 0; j < MAX_VALUES; j++) {
			if (j >= n)
				break;
			found |= int_op_holds(op, sig, x, rd64(b, vals + j * 8));
		}
		ok = op == OP_NOT_EQUAL ? !found : found;
	} else if (kind == 2 && vkind == TETRA_ARG_INT) {
		struct generic_scratch *m = scratch_value();

		if (!m)
			return -1;
		for (__u32 j = 0; j < MAX_VALUES; j++) {
			if (j >= n)
				break;
			found |= int_in_map(m, x, rd32(b, vals + j * 4));
		}
		ok = op == OP_NOT_IN_MAP ? !found : found;
	} else if (kind == 2 && (vkind == TETRA_ARG_BYTES || vkind == TETRA_ARG_PATH)) {
		__u32 class = op == OP_PREFIX || op == OP_NOT_PREFIX	   ? OP_PREFIX
			      : op == OP_POSTFIX || op == OP_NOT_POSTFIX ? OP_POSTFIX
									 : OP_EQUAL;

		for (__u32 j = 0; j < MAX_VALUES; j++) {
			if (j >= n || found)
				break;
			found = str_lookup(class, s->voff[slot], s->vlen[slot],
					   rd32(b, vals + j * 4));
		}
		ok = op == OP_NOT_EQUAL || op == OP_NOT_PREFIX || op == OP_NOT_POSTFIX ? !found
										       : found;
	} else {
		ok = false; /* the argument could not be read: it matches nothing */
	}
	return ok ? (int)(next & BLOB_MASK) : -1;
}

/* Skips a section: u32 body_len | body. */
static __always_inline __u32 skip(const struct blob *b, __u32 off)
{
	return off + 4 + rd32(b, off);
}

/* A task's thread-group id as its own pid namespace numbers it. */
static __always_inline __u32 ns_tgid(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, group_leader, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	__u32 nr = 0;

	bpf_probe_read_kernel(&nr, sizeof(nr), &pid->numbers[level & 31].nr);
	return nr;
}

#define PID_FLAG_NS 1
#define PID_FLAG_FOLLOW 2
/* Ancestors a followForks filter looks at, the process included (as Tetragon). */
#define PID_FOLLOW_DEPTH 9

/*
 * Is one of the filter's values the process's pid? With isNamespacePID the pid is the one
 * the process has in its own pid namespace, compared for the process alone. Otherwise,
 * with followForks, the ancestors count too (up to PID_FOLLOW_DEPTH processes up the
 * real_parent chain), each one's parent pid as well.
 */
static __always_inline bool pid_in_values(const struct blob *b, __u32 vals, __u32 n, __u32 flags)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	bool ns = flags & PID_FLAG_NS;
	/* Every process descends from some namespace's pid 1: ancestors count with host pids only. */
	__u32 depth = (flags & PID_FLAG_FOLLOW) && !ns ? PID_FOLLOW_DEPTH : 1;

	for (__u32 l = 0; l < PID_FOLLOW_DEPTH; l++) {
		if (l >= depth || !task)
			break;
		struct task_struct *parent = BPF_CORE_READ(task, real_parent);
		__u32 pid = ns ? ns_tgid(task) : BPF_CORE_READ(task, tgid);
		__u32 ppid = 0;

		if (!ns && (flags & PID_FLAG_FOLLOW) && parent)
			ppid = BPF_CORE_READ(parent, tgid);
		for (__u32 j = 0; j < MAX_VALUES; j++) {
			if (j >= n)
				break;
			__u32 v = rd32(b, vals + j * 4);

			if (v == pid || (ppid && v == ppid))
				return true;
		}
		/* The idle task is its own parent. */
		task = parent == task ? NULL : parent;
	}
	return false;
}

/* The pids section at `off`: 1 when every filter matches. Global, to keep its stack out of
 * eval_selector's frame (kernels before 6.2 cap the frames of a call chain at 512 bytes). */
__noinline int match_pids(const struct blob *b, __u32 off)
{
	if (!b)
		return 0;
	__u32 count = rd32(b, off + 4);
	__u32 p = off + 8;

	for (__u32 f = 0; f < MAX_FILTERS; f++) {
		if (f >= count)
			break;
		__u32 op = rd32(b, p), flags = rd32(b, p + 4), n = rd32(b, p + 8);
		bool found = pid_in_values(b, p + 12, n, flags);

		p += 12 + (n & 31) * 4;
		if ((op == 2) == found)
			return false;
	}
	return true;
}

/* The inode of the current task's namespace `ns` (encoding.rs numbering, Uts 0 .. User 9). */
__noinline __u32 current_ns_inum(__u32 ns)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct nsproxy *p = BPF_CORE_READ(t, nsproxy);

	switch (ns) {
	case 0: return BPF_CORE_READ(p, uts_ns, ns.inum);
	case 1: return BPF_CORE_READ(p, ipc_ns, ns.inum);
	case 2: return BPF_CORE_READ(p, mnt_ns, ns.inum);
	case 3: {
		/* The task's own pid namespace: that of its pid at the pid's deepest level. */
		struct pid *pid = BPF_CORE_READ(t, thread_pid);
		__u32 level = BPF_CORE_READ(pid, level);

		return BPF_CORE_READ(pid, numbers[level & 31].ns, ns.inum);
	}
	case 4: return BPF_CORE_READ(p, pid_ns_for_children, ns.inum);
	case 5: return BPF_CORE_READ(p, net_ns, ns.inum);
	case 6: return BPF_CORE_READ(p, time_ns, ns.inum);
	case 7: return BPF_CORE_READ(p, time_ns_for_children, ns.inum);
	case 8: return BPF_CORE_READ(p, cgroup_ns, ns.inum);
	case 9: return BPF_CORE_READ(t, cred, user_ns, ns.inum);
	default: return 0;
	}
}

/* The namespaces section at `off`: every filter must hold (In: the inode is listed). */
__noinline int match_namespaces(const struct blob *b, __u32 off)
{
	if (!b)
		return 0;
	__u32 count = rd32(b, off + 4);
	__u32 p = off + 8;

	for (__u32 f = 0; f < MAX_FILTERS; f++) {
		if (f >= count)
			break;
		__u32 ns = rd32(b, p), op = rd32(b, p + 4), n = rd32(b, p + 8);
		__u32 inum = current_ns_inum(ns);
		bool found = false;

		p += 12;
		for (__u32 j = 0; j < MAX_VALUES; j++) {
			if (j >= n)
				break;
			found |= rd32(b, p + j * 4) == inum;
		}
		p += (n & 31) * 4;
		if ((op == 2) == found)
			return 0;
	}
	return 1;
}

/* The current task's capability set `set` (0 effective, 1 inheritable, 2 permitted). */
static __always_inline __u64 current_caps(__u32 set)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	const struct cred *c = BPF_CORE_READ(t, cred);
	const void *src = set == 0 ? (const void *)&c->cap_effective
			  : set == 1 ? (const void *)&c->cap_inheritable
				     : (const void *)&c->cap_permitted;
	__u64 caps = 0;

	bpf_probe_read_kernel(&caps, sizeof(caps), src);
	return caps;
}

/*
 * The capabilities section at `off`: In holds when the current task has at least one of
 * the listed capabilities in the set (0 effective, 1 inheritable, 2 permitted), NotIn when
 * it has none. kernel_cap_t is one u64 (6.3+) or two u32 words (before): the same 8 bytes.
 * A filter with isNamespaceCapability (flags bit 0) holds only for a task outside the
 * host's user namespace, as in Tetragon; the host's is the initial one, the only one of
 * level 0.
 */
__noinline int match_capabilities(const struct blob *b, __u32 off)
{
	if (!b)
		return 0;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	const struct cred *c = BPF_CORE_READ(t, cred);
	__u32 count = rd32(b, off + 4);
	__u32 p = off + 8;

	for (__u32 f = 0; f < MAX_FILTERS; f++) {
		if (f >= count)
			break;
		__u32 set = rd32(b, p), op = rd32(b, p + 4), flags = rd32(b, p + 8);
		__u64 mask = rd64(b, p + 12);

		if ((flags & 1) && BPF_CORE_READ(c, user_ns, level) == 0)
			return 0;
		p += 20;
		if ((op == 2) == ((current_caps(set) & mask) != 0))
			return 0;
	}
	return 1;
}

/* Prefix/Postfix: does the executable's path (s->bin) start/end with a value of the filter
 * at `off`? */
static __always_inline bool binary_affix_listed(struct generic_scratch *s, const struct blob *b,
						__u32 off)
{
	__u32 op = rd32(b, off + 8), n = rd32(b, off + 16), len = s->bin.len;
	__u32 class = op <= BIN_NOT_PREFIX ? OP_PREFIX : OP_POSTFIX;
	bool found = false;

	for (__u32 j = 0; j < MAX_VALUES && len; j++) {
		if (j >= n || found)
			break;
		found = str_lookup(class | FROM_BIN, 0, len & (BIN_MAX * 2 - 1),
				   rd32(b, off + 20 + j * 4));
	}
	return found;
}

/*
 * In/NotIn: is binary number `id` (binary_ids) one of the filter at `off`'s paths? User
 * space puts (map id, number) into int_set for every path of the filter's value maps.
 */
static __always_inline bool binary_id_listed(const struct blob *b, __u32 off, __u32 id)
{
	__u32 n = rd32(b, off + 16);
	struct int_key k = { .value = id };

	for (__u32 j = 0; j < MAX_VALUES && id; j++) {
		if (j >= n)
			break;
		k.map_id = rd32(b, off + 20 + j * 4);
		if (bpf_map_lookup_elem(&int_set, &k))
			return true;
	}
	return false;
}

#define MAX_ANCESTORS 8

/*
 * followChildren: is the executable of one of the current task's ancestors (up to
 * MAX_ANCESTORS generations, as long as they run) listed by the filter at `off`?
 */
__noinline int ancestor_listed(const struct blob *b, __u32 off)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();

	if (!b)
		return 0;
	for (__u32 i = 0; i < MAX_ANCESTORS; i++) {
		t = BPF_CORE_READ(t, real_parent);
		__u32 tgid = BPF_CORE_READ(t, tgid);

		if (tgid <= 1)
			break; /* init adopts orphans: its descendants are everyone */
		struct binary_entry *e = bpf_map_lookup_elem(&binaries, &tgid);

		if (!e)
			continue;
		resolve_binary_id(e);
		if (binary_id_listed(b, off, e->id))
			return 1;
	}
	return 0;
}

/* The binaries section at `off` against the executable: its number in s->bin.id, its path
 * in s->bin (len 0: unknown). */
static __always_inline bool match_binaries(struct generic_scratch *s, const struct blob *b,
					   __u32 off)
{
	__u32 count = rd32(b, off + 4);

	if (!count)
		return true;
	/* At most one binary filter per selector (validated). */
	__u32 op = rd32(b, off + 8), flags = rd32(b, off + 12);
	bool found;

	if (op <= BIN_NOT_IN) {
		found = binary_id_listed(b, off, s->bin.id);
		if (!found && (flags & 1))
			found = ancestor_listed(b, off);
	} else {
		found = binary_affix_listed(s, b, off);
	}
	return (op == BIN_IN || op == BIN_PREFIX || op == BIN_POSTFIX) ? found : !found;
}

/* Does every entry of the args section at `off` (matchArgs or matchReturnArgs) match? */
static __always_inline bool match_arg_filters(struct generic_scratch *s, const struct blob *b,
					      __u32 off)
{
	__u32 nargs = rd32(b, off + 4);
	__u32 f = off + 8;

	for (__u32 i = 0; i < MAX_FILTERS; i++) {
		if (i >= nargs)
			break;
		int next = is_sock_op(b, f) ? eval_sock_filter(b, f) : eval_arg_filter(s, b, f);

		if (next < 0)
			return false;
		f = next;
	}
	return true;
}

/*
 * matchNamespaceChanges and matchCapabilityChanges, the two sections after the return
 * actions (`off`: the actions section). Each filter must hold against what the process
 * had at exec (exec_states): namespaces In, one of the listed kinds differs; NotIn, one of
 * the others does; capabilities In, a listed capability of the set differs; NotIn, only
 * others do. A match records the current values, so a change matches once. A process
 * without an exec record (older than the agent) never matches.
 */
__noinline int match_changes(const struct blob *b, __u32 off)
{
	if (!b)
		return 0;
	off = skip(b, skip(b, skip(b, off))); /* actions, return args, return actions */
	__u32 caps_off = skip(b, off);
	__u32 n_ns = rd32(b, off + 4), n_caps = rd32(b, caps_off + 4);

	if (!n_ns && !n_caps)
		return 1;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct exec_state *st = bpf_map_lookup_elem(&exec_states, &tgid);

	if (!st)
		return 0;
	__u32 p = off + 8;

	for (__u32 f = 0; f < MAX_FILTERS; f++) {
		if (f >= n_ns)
			break;
		__u32 op = rd32(b, p), mask = rd32(b, p + 4);
		bool changed = false;

		p += 8;
		if (op == 2)
			mask = ~mask;
		for (__u32 i = 0; i < TETRA_NS_COUNT; i++) {
			if ((mask & (1 << i)) && st->ns[i] && st->ns[i] != current_ns_inum(i))
				changed = true;
		}
		if (!changed)
			return 0;
	}
	p = caps_off + 8;
	for (__u32 f = 0; f < MAX_FILTERS; f++) {
		if (f >= n_caps)
			break;
		__u32 set = rd32(b, p) & 3, op = rd32(b, p + 4); /* user space sends 0..2 */
		__u64 mask = rd64(b, p + 12), was = st->caps[set], now = current_caps(set);

		p += 20;
		if (op == 2 ? (was & mask) != (now & mask) || was == now : (was & mask) == (now & mask))
			return 0;
	}
	/* Matched: what the process has now is what later calls compare with. */
	for (__u32 i = 0; i < TETRA_NS_COUNT; i++)
		st->ns[i] = current_ns_inum(i);
	for (__u32 set = 0; set < 3; set++)
		st->caps[set] = current_caps(set);
	return 1;
}

/*
 * A selector is evaluated in two phases. The first, before any argument is read, runs the
 * filters on the task alone (matchPIDs, matchNamespaces, matchCapabilities,
 * matchBinaries): a hook none of whose selectors passes them returns without copying its
 * arguments. A section's filter count is checked here, so an empty one costs no call.
 *
 * The selector at `off`: 1 when its task filters all match.
 */
__noinline int eval_task_filters(struct generic_scratch *s, const struct blob *b, __u32 off)
{
	if (!s || !b)
		return 0;
	off += 4;
	if (rd32(b, off + 4) && !match_pids(b, off))
		return 0;
	off = skip(b, off); /* pids */
	if (rd32(b, off + 4) && !match_namespaces(b, off))
		return 0;
	off = skip(b, off);
	if (rd32(b, off + 4) && !match_capabilities(b, off))
		return 0;
	off = skip(b, off);
	return match_binaries(s, b, off);
}

/*
 * The second phase, on the recorded arguments, of a selector whose task filters matched:
 * 1 when its matchArgs and change filters match too (s->actions is then set), else 0.
 */
__noinline int eval_arg_filters(struct generic_scratch *s, const struct blob *b, __u32 off)
{
	if (!s || !b)
		return 0;
	off = skip(b, skip(b, skip(b, skip(b, off + 4)))); /* pids, ns, caps, binaries */
	if (!match_arg_filters(s, b, off))
		return 0;
	off = skip(b, off);
	if (!match_changes(b, off))
		return 0;
	s->actions = off & BLOB_MASK;
	return 1;
}

/*
 * The current process's executable: its number (resolve_binary_id) into s->bin.id, and
 * with NEEDS_BINARY_PATH (a Prefix/Postfix filter) its path into s->bin. A process without
 * an entry in binaries gets one from its mapped executable's path.
 */
static __always_inline void current_binary(struct generic_scratch *s, __u32 tgid)
{
	struct binary_entry *e = bpf_map_lookup_elem(&binaries, &tgid);

	if (!e) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct file *exe = BPF_CORE_READ(task, mm, exe_file);
		struct fs_struct *fs = BPF_CORE_READ(task, fs);
		struct path p = BPF_CORE_READ(exe, f_path);
		bool truncated = false;
		__u32 len;

		s->bin.len = s->bin.id = s->bin.gen = s->bin.pad = 0;
		if (!exe)
			return;
		len = walk_path(p.dentry, p.mnt, &fs->root, &s->path, &truncated);
		/* As the exec program records it: at most BIN_MAX - 1 bytes, zero-padded. */
		if (len > BIN_MAX - 1)
			len = BIN_MAX - 1;
		__builtin_memset(s->bin.path, 0, BIN_MAX);
		bpf_probe_read_kernel(s->bin.path, bound(len, BIN_MAX - 1),
				      &s->path.data[(PATH_BUF_SIZE - len) & PATH_BUF_MASK]);
		s->bin.len = len;
		resolve_binary_id(&s->bin);
		bpf_map_update_elem(&binaries, &tgid, &s->bin, BPF_NOEXIST);
		return;
	}
	resolve_binary_id(e);
	if (cfg.needs_binary & NEEDS_BINARY_PATH) {
		/* The header and the path's bytes: the comparisons read no further (a prefix
		 * key reads past the string, but compares only its length's bits). */
		__u32 len = e->len < BIN_MAX ? e->len : BIN_MAX;

		bpf_probe_read_kernel(&s->bin, bound(offsetof(struct binary_entry, path) + len,
						     BIN_MAX * 2 - 1), e);
		s->bin.len = len;
	}
	s->bin.id = e->id;
}

/*
 * Post with rateLimit: is an event of `selector` with the arguments just recorded within
 * `ms` milliseconds of the last one posted for the same scope key? If not, this one is
 * posted and its time recorded.
 */
__noinline int rate_limited(__u32 selector, __u32 scope, __u64 ms, __u64 pid_tgid)
{
	struct generic_scratch *s = scratch_value();
	__u64 now = bpf_ktime_get_ns();

	if (!s)
		return 0;
	struct rate_key *k = &s->rate;

	__builtin_memset(k, 0, sizeof(*k));
	k->selector = selector;
	k->scope = scope;
	k->id = scope == 0 ? pid_tgid : scope == 1 ? pid_tgid >> 32 : 0;
	for (__u32 i = 0; i < MAX_SLOTS; i++) {
		if (i >= cfg.n_args)
			break;
		__u32 len = s->vlen[i] < RATE_ARG_BYTES ? s->vlen[i] : RATE_ARG_BYTES;

		if (len)
			bpf_probe_read_kernel(&k->data[(i * RATE_ARG_BYTES) & 255], bound(len, 63),
					      &s->data[s->voff[i] & DATA_MASK]);
	}
	__u64 *last = bpf_map_lookup_elem(&rate_limit, k);

	if (last && now - *last < ms * 1000000)
		return 1;
	bpf_map_update_elem(&rate_limit, k, &now, BPF_ANY);
	return 0;
}

/*
 * The first phase over every selector: bit i set when selector i's task filters match.
 * All bits for a hook without selectors, which posts every call, and for one whose
 * selectors have no task filter.
 */
static __always_inline __u32 task_selectors(struct generic_scratch *s, const struct blob *b,
					    __u32 tgid)
{
	__u32 n = rd32(b, 4);
	__u32 off = 8, passed = 0;

	if (n == 0 || !cfg.task_filters)
		return (1 << MAX_SELECTORS) - 1;
	if (cfg.needs_binary)
		current_binary(s, tgid);
	for (__u32 i = 0; i < MAX_SELECTORS; i++) {
		if (i >= n)
			break;
		if (eval_task_filters(s, b, off))
			passed |= 1 << i;
		off = (off + rd32(b, off)) & BLOB_MASK;
	}
	return passed;
}

/*
 * Index of the first selector among `passed` (task_selectors) whose argument filters
 * match too (0 when the hook has none), or -1.
 */
static __always_inline __u32 match_selectors(struct generic_scratch *s, const struct blob *b,
					     __u32 passed, __u32 *actions)
{
	__u32 n = rd32(b, 4);
	__u32 off = 8;

	*actions = 0;
	if (n == 0)
		return 0;
	for (__u32 i = 0; i < MAX_SELECTORS; i++) {
		if (i >= n)
			break;
		if ((passed & (1 << i)) && eval_arg_filters(s, b, off)) {
			*actions = s->actions;
			return i;
		}
		off = (off + rd32(b, off)) & BLOB_MASK;
	}
	return -1;
}

#endif
