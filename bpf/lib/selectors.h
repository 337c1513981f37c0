/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * In-kernel evaluation of the selector blob written by user space (the format is
 * documented in crds/src/compile/encoding.rs). Selectors are ORed, the first match wins;
 * the filters inside one are ANDed. User space refuses to load a blob using a filter this
 * file does not evaluate (namespaces, capabilities), so an empty section is all the
 * kernel ever sees for those. Return args and actions are evaluated by the return program
 * (generic.bpf.c) on the selector the entry matched.
 */
#ifndef TETRA_SELECTORS_H
#define TETRA_SELECTORS_H

#include "generic.h"

#define MAX_SELECTORS 5
#define MAX_FILTERS 5
#define MAX_VALUES 16
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
#define ACT_NOPOST 9
#define ACT_SIGNAL 10

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
 * The evaluation is split into global functions: the verifier checks each once, on its
 * own, instead of once per path through the selectors (which exceeds its budget).
 *
 * Is the string (the executable when `how` has FROM_BIN, else data[off..off+len)) in value
 * map `map_id`, compared as `how & 0xff` (OP_EQUAL exact, OP_PREFIX, OP_POSTFIX)?
 */
#define FROM_BIN 0x100

__noinline int str_lookup(__u32 how, __u32 off, __u32 len, __u32 map_id)
{
	__u32 from_bin = how & FROM_BIN, class = how & 0xff;
	struct generic_scratch *s = scratch_value();

	if (!s)
		return 0;
	const void *src = from_bin ? (const void *)s->bin.path
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
 * One matchArgs entry at `off`: slot | op | type_code | kind | n | values. Returns the
 * offset of the next entry when it matches, -1 when not.
 */
__noinline int eval_arg_filter(const struct blob *b, __u32 off)
{
	struct generic_scratch *s = scratch_value();

	if (!s || !b)
		return -1;
	__u32 slot = rd32(b, off), op = rd32(b, off + 4), ty = rd32(b, off + 8);
	__u32 kind = rd32(b, off + 12), n = rd32(b, off + 16);
	__u32 vals = off + 20;
	__u32 next = vals + n * (kind == 1 ? 8 : kind == 2 ? 4 : 0);
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
			__u64 v = rd64(b, vals + j * 8);

			if (op == OP_EQUAL || op == OP_NOT_EQUAL)
				found |= x == v;
			else if (op == OP_GT)
				found |= sig ? (__s64)x > (__s64)v : x > v;
			else if (op == OP_LT)
				found |= sig ? (__s64)x < (__s64)v : x < v;
			else if (op == OP_MASK)
				found |= (x & v) != 0;
		}
		ok = op == OP_NOT_EQUAL ? !found : found;
	} else if (kind == 2 && vkind == TETRA_ARG_INT) {
		for (__u32 j = 0; j < MAX_VALUES; j++) {
			if (j >= n)
				break;
			found |= int_in_map(s, x, rd32(b, vals + j * 4));
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
 * the process has in its own pid namespace. With followForks the ancestors count too (up
 * to PID_FOLLOW_DEPTH processes up the real_parent chain), each one's parent pid as well
 * unless isNamespacePID.
 */
static __always_inline bool pid_in_values(const struct blob *b, __u32 vals, __u32 n, __u32 flags)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 depth = flags & PID_FLAG_FOLLOW ? PID_FOLLOW_DEPTH : 1;
	bool ns = flags & PID_FLAG_NS;

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

/* The binaries section at `off` against the executable in s->bin (len 0: unknown). */
static __always_inline bool match_binaries(struct generic_scratch *s, const struct blob *b,
					   __u32 off)
{
	__u32 count = rd32(b, off + 4);

	if (!count)
		return true;
	/* At most one binary filter per selector (validated). */
	__u32 op = rd32(b, off + 8), n = rd32(b, off + 16);
	__u32 class = op <= BIN_NOT_IN ? OP_EQUAL : op <= BIN_NOT_PREFIX ? OP_PREFIX : OP_POSTFIX;
	bool found = false;

	for (__u32 j = 0; j < MAX_VALUES && s->bin.len; j++) {
		if (j >= n || found)
			break;
		found = str_lookup(class | FROM_BIN, 0, s->bin.len & (BIN_MAX * 2 - 1),
				   rd32(b, off + 20 + j * 4));
	}
	return (op == BIN_IN || op == BIN_PREFIX || op == BIN_POSTFIX) ? found : !found;
}

/* Does every entry of the args section at `off` (matchArgs or matchReturnArgs) match? */
static __always_inline bool match_arg_filters(const struct blob *b, __u32 off)
{
	__u32 nargs = rd32(b, off + 4);
	__u32 f = off + 8;

	for (__u32 i = 0; i < MAX_FILTERS; i++) {
		if (i >= nargs)
			break;
		int next = eval_arg_filter(b, f);

		if (next < 0)
			return false;
		f = next;
	}
	return true;
}

/* The selector at `off`: 1 when every filter matches (s->actions is then set), else 0. */
__noinline int eval_selector(struct generic_scratch *s, const struct blob *b, __u32 off)
{
	if (!s || !b)
		return 0;
	off += 4;
	if (!match_pids(b, off))
		return 0;
	off = skip(b, off); /* pids */
	off = skip(b, off); /* namespaces (refused by user space when present) */
	off = skip(b, off); /* capabilities (likewise) */
	if (!match_binaries(s, b, off))
		return 0;
	off = skip(b, off);
	if (!match_arg_filters(b, off))
		return 0;
	s->actions = skip(b, off) & BLOB_MASK;
	return 1;
}

/* The current process's executable into s->bin, computed once per (tgid, mm) and cached. */
static __always_inline void current_binary(struct generic_scratch *s, __u32 tgid)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 mm = (__u64)BPF_CORE_READ(task, mm);
	struct binary_entry *e = bpf_map_lookup_elem(&binaries, &tgid);

	s->bin.len = 0;
	if (e && e->mm == mm) {
		bpf_probe_read_kernel(&s->bin, sizeof(s->bin), e);
		return;
	}
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	struct path p = BPF_CORE_READ(exe, f_path);
	bool truncated = false;
	__u32 len;

	if (!exe)
		return;
	len = walk_path(p.dentry, p.mnt, &fs->root, &s->path, &truncated);
	if (len > BIN_MAX)
		len = BIN_MAX;
	s->bin.mm = mm;
	s->bin.len = len;
	bpf_probe_read_kernel(s->bin.path, bound(len, BIN_MAX * 2 - 1),
			      &s->path.data[(PATH_BUF_SIZE - len) & PATH_BUF_MASK]);
	bpf_map_update_elem(&binaries, &tgid, &s->bin, BPF_ANY);
}

/* Index of the first matching selector (0 when the hook has none), or -1. */
static __always_inline __u32 match_selectors(struct generic_scratch *s, const struct blob *b,
					     __u32 tgid, __u32 *actions)
{
	__u32 n = rd32(b, 4);
	__u32 off = 8;

	*actions = 0;
	if (n == 0)
		return 0;
	if (cfg.needs_binary)
		current_binary(s, tgid);
	for (__u32 i = 0; i < MAX_SELECTORS; i++) {
		if (i >= n)
			break;
		if (eval_selector(s, b, off)) {
			*actions = s->actions;
			return i;
		}
		off = (off + rd32(b, off)) & BLOB_MASK;
	}
	return -1;
}

#endif
