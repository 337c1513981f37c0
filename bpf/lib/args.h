/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Reading a hook's arguments and recording them in the generic message (the encoding is
 * documented at struct tetra_msg_generic in tetra_abi.h).
 */
#ifndef TETRA_ARGS_H
#define TETRA_ARGS_H

#include <bpf/bpf_endian.h>
#include "generic.h"

/*
 * libbpf's USDT support: the maps of argument specs it fills at attach and bpf_usdt_arg().
 * One probe rarely has more than a few call sites; the default of 256 specs would cost
 * every hook object ~50 KiB.
 */
#define BPF_USDT_MAX_SPEC_CNT 32
#include <bpf/usdt.bpf.h>

#define AF_INET 2
#define AF_INET6 10

/*
 * Argument `pos` of the current syscall. The pt_regs a syscall wrapper receives are the
 * task's user registers, which bpf_task_pt_regs() returns as a BTF pointer: read
 * directly, each argument costs a load instead of a probe-read helper call.
 */
static __always_inline __u64 syscall_arg(__u32 pos)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

	switch (pos) {
	case 0: return PT_REGS_PARM1_SYSCALL(regs);
	case 1: return PT_REGS_PARM2_SYSCALL(regs);
	case 2: return PT_REGS_PARM3_SYSCALL(regs);
	case 3: return PT_REGS_PARM4_SYSCALL(regs);
	case 4: return PT_REGS_PARM5_SYSCALL(regs);
	default: return 0;
	}
}

/*
 * The u64 at byte `off` of a BTF program's context, as one instruction: plain array reads
 * let clang merge the cases into `ctx + off` and one load, which the verifier refuses
 * (a modified ctx pointer) once a hook reads arguments in two places (the pre-check).
 */
#define ctx_u64(ctx, off)                                                            \
	({                                                                           \
		__u64 __v;                                                           \
		asm volatile("%[v] = *(u64 *)(%[c] + " #off ")" : [v] "=r"(__v) : [c] "r"(ctx)); \
		__v;                                                                 \
	})

/* The raw 64-bit value of the argument at `pos` (a position, or a tracepoint offset). */
static __always_inline __u64 raw_arg(void *ctx, int src, __u32 pos, __u32 size)
{
	__u64 v = 0;

	if (src == SRC_TRACEPOINT) {
		/* Offsets come from the tracepoint's format file; the record is kernel memory. */
		bpf_probe_read_kernel(&v, size & 15, (void *)ctx + pos);
		return v;
	}
	if (src == SRC_USDT) {
		long value = 0;

		/* Register, memory or constant operand, sign-extended as the note says. */
		bpf_usdt_arg(ctx, pos, &value);
		return value;
	}
	if (src == SRC_BTF && cfg.syscall) /* fentry on a syscall wrapper */
		return syscall_arg(pos);
	if (src == SRC_BTF) {
		switch (pos) {
		case 0: return ctx_u64(ctx, 0);
		case 1: return ctx_u64(ctx, 8);
		case 2: return ctx_u64(ctx, 16);
		case 3: return ctx_u64(ctx, 24);
		case 4: return ctx_u64(ctx, 32);
		case 5: return ctx_u64(ctx, 40);
		default: return 0;
		}
	}
	if (src == SRC_KPROBE && cfg.syscall)
		return syscall_arg(pos);
	/* Read through CO-RE probes: a variable ctx offset is refused by the verifier. */
	struct pt_regs *regs = ctx;

	switch (pos) {
	case 0: return PT_REGS_PARM1_CORE(regs);
	case 1: return PT_REGS_PARM2_CORE(regs);
	case 2: return PT_REGS_PARM3_CORE(regs);
	case 3: return PT_REGS_PARM4_CORE(regs);
	case 4: return PT_REGS_PARM5_CORE(regs);
	default: return 0;
	}
}

/* The slot's integer, extended to 64 bits the way its type says. */
static __always_inline __u64 extend(__u32 reader, __u64 v)
{
	switch (reader) {
	case READ_S32: return (__u64)(__s64)(__s32)v;
	case READ_U32: return (__u32)v;
	case READ_S16: return (__u64)(__s64)(__s16)v;
	case READ_U16: return (__u16)v;
	case READ_S8: return (__u64)(__s64)(__s8)v;
	case READ_U8: return (__u8)v;
	default: return v;
	}
}

/* Places a value header at `off`; the value's bytes follow it. */
static __always_inline struct tetra_generic_arg *arg_header(struct generic_scratch *s, __u32 off)
{
	return (struct tetra_generic_arg *)&s->data[off & DATA_MASK];
}

/* Copies the rendered path out of the walk buffer into the message at `off`. */
static __always_inline __u32 put_path(struct generic_scratch *s, __u32 off, struct dentry *dentry,
				      struct vfsmount *mnt, __u8 *flags)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	bool truncated = false;
	__u32 len = walk_path(dentry, mnt, &fs->root, &s->path, &truncated);

	if (truncated)
		*flags |= TETRA_ARG_TRUNCATED;
	if (len > STR_MAX)
		len = STR_MAX;
	if (bpf_probe_read_kernel(&s->data[off & DATA_MASK], len & (STR_MAX * 2 - 1),
				  &s->path.data[(PATH_BUF_SIZE - len) & PATH_BUF_MASK]) < 0) {
		*flags |= TETRA_ARG_READ_ERROR;
		return 0;
	}
	return len;
}

static __always_inline __u32 put_file(struct generic_scratch *s, __u32 off, struct file *file,
				      __u8 *flags, __u32 *mode)
{
	if (!file) {
		*flags |= TETRA_ARG_READ_ERROR;
		return 0;
	}
	struct path p = BPF_CORE_READ(file, f_path);

	*mode = BPF_CORE_READ(file, f_inode, i_mode);
	return put_path(s, off, p.dentry, p.mnt, flags);
}

static __always_inline struct file *fd_file(__u64 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	__u32 max = BPF_CORE_READ(fdt, max_fds);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;

	if (fd >= max)
		return NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

/* A NUL-terminated string, user memory first; returns its length without the NUL. */
static __always_inline __u32 put_string(struct generic_scratch *s, __u32 off, const void *ptr,
					bool kernel_only, __u8 *flags)
{
	void *dst = &s->data[off & DATA_MASK];
	long n = -1;

	if (!kernel_only)
		n = bpf_probe_read_user_str(dst, STR_MAX, ptr);
	if (n < 0)
		n = bpf_probe_read_kernel_str(dst, STR_MAX, ptr);
	if (n <= 0) {
		*flags |= TETRA_ARG_READ_ERROR;
		return 0;
	}
	if (n == STR_MAX)
		*flags |= TETRA_ARG_TRUNCATED;
	return (n - 1) & (STR_MAX - 1);
}

static __always_inline __u32 put_bytes(struct generic_scratch *s, __u32 off, const void *ptr,
				       __u64 size, __u8 *flags, __u32 *orig)
{
	void *dst = &s->data[off & DATA_MASK];
	__u32 len = size > STR_MAX ? STR_MAX : size;

	*orig = size > 0xffffffff ? 0xffffffff : size;
	if (size > STR_MAX)
		*flags |= TETRA_ARG_TRUNCATED;
	if (!len)
		return 0;
	if (bpf_probe_read_user(dst, len & (STR_MAX * 2 - 1), ptr) < 0 &&
	    bpf_probe_read_kernel(dst, len & (STR_MAX * 2 - 1), ptr) < 0) {
		*flags |= TETRA_ARG_READ_ERROR;
		return 0;
	}
	return len;
}

/*
 * A maxData char_buf: its descriptor, then its first STR_MAX bytes inline; send_data()
 * fills in the descriptor when it sends the rest, right before the event.
 */
static __always_inline __u32 put_data(struct generic_scratch *s, __u32 off, const void *ptr,
				      __u64 size, __u8 *flags)
{
	struct tetra_arg_data *d = (struct tetra_arg_data *)&s->data[off & DATA_MASK];
	__u32 orig, len = put_bytes(s, off + sizeof(*d), ptr, size, flags, &orig);

	d->id = 0;
	d->size = size;
	d->sent = 0;
	d->error = 0;
	if (*flags & TETRA_ARG_READ_ERROR)
		return 0;
	*flags &= ~TETRA_ARG_TRUNCATED; /* not cut: the rest follows in data messages */
	return sizeof(*d) + len;
}

/* Most iovec entries of a char_iovec read. */
#define IOVEC_MAX 8

/*
 * The bytes of `count` iovecs (user memory) one after the other, at most `limit` of them
 * (the return value of a read) and STR_MAX recorded; `orig` gets the total size.
 */
static __always_inline __u32 put_iovec(struct generic_scratch *s, __u32 off, const void *iov,
				       __u64 count, __u64 limit, __u8 *flags, __u32 *orig)
{
	__u64 total = 0;
	__u32 len = 0;

	struct iovec *v = (struct iovec *)s->raw;

	for (__u32 i = 0; i < IOVEC_MAX; i++) {
		if (i >= count || total >= limit)
			break;
		if (bpf_probe_read_user(v, sizeof(*v), iov + i * sizeof(*v)) < 0) {
			*flags |= TETRA_ARG_READ_ERROR;
			break;
		}
		__u64 n = v->iov_len;

		if (n > limit - total)
			n = limit - total;
		total += n;
		if (len >= STR_MAX)
			continue;
		if (n > STR_MAX - len)
			n = STR_MAX - len;
		if (bpf_probe_read_user(&s->data[bound(off + len, DATA_MASK)],
					bound(n, STR_MAX * 2 - 1), v->iov_base) < 0) {
			*flags |= TETRA_ARG_READ_ERROR;
			break;
		}
		len += n;
	}
	if (count > IOVEC_MAX || total > len)
		*flags |= TETRA_ARG_TRUNCATED;
	*orig = total > 0xffffffff ? 0xffffffff : total;
	return len & (STR_MAX * 2 - 1);
}

static __always_inline __u32 put_sock(struct generic_scratch *s, __u32 off, struct sock *sk)
{
	struct tetra_arg_sock *o = (struct tetra_arg_sock *)&s->data[off & DATA_MASK];

	__builtin_memset(o, 0, sizeof(*o));
	o->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	o->type = BPF_CORE_READ(sk, sk_type);
	o->protocol = BPF_CORE_READ(sk, sk_protocol);
	o->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	o->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	o->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	o->mark = BPF_CORE_READ(sk, sk_mark);
	o->priority = BPF_CORE_READ(sk, sk_priority);
	o->cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	if (o->family == AF_INET6) {
		BPF_CORE_READ_INTO(&o->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&o->daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		BPF_CORE_READ_INTO((__u32 *)o->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)o->daddr, sk, __sk_common.skc_daddr);
	}
	return sizeof(*o);
}

static __always_inline long read_any(void *dst, __u32 size, const void *ptr)
{
	if (bpf_probe_read_user(dst, size, ptr) == 0)
		return 0;
	return bpf_probe_read_kernel(dst, size, ptr);
}

static __always_inline __u32 put_sockaddr(struct generic_scratch *s, __u32 off, const void *ptr,
					  __u8 *flags)
{
	struct tetra_arg_sockaddr *o = (struct tetra_arg_sockaddr *)&s->data[off & DATA_MASK];
	__u16 family = 0;

	__builtin_memset(o, 0, sizeof(*o));
	if (read_any(&family, sizeof(family), ptr) < 0) {
		*flags |= TETRA_ARG_READ_ERROR;
		return 0;
	}
	o->family = family;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)s->raw;

		__builtin_memset(sin, 0, sizeof(*sin));
		read_any(sin, sizeof(*sin), ptr);
		o->port = bpf_ntohs(sin->sin_port);
		__builtin_memcpy(o->addr, &sin->sin_addr, 4);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)s->raw;

		__builtin_memset(sin6, 0, sizeof(*sin6));
		read_any(sin6, sizeof(*sin6), ptr);
		o->port = bpf_ntohs(sin6->sin6_port);
		__builtin_memcpy(o->addr, &sin6->sin6_addr, 16);
	}
	return sizeof(*o);
}

static __always_inline __u32 put_cred(struct generic_scratch *s, __u32 off,
				      const struct cred *c)
{
	struct tetra_arg_cred *o = (struct tetra_arg_cred *)&s->data[off & DATA_MASK];
	struct user_namespace *ns = BPF_CORE_READ(c, user_ns);

	o->uid = BPF_CORE_READ(c, uid.val);
	o->gid = BPF_CORE_READ(c, gid.val);
	o->euid = BPF_CORE_READ(c, euid.val);
	o->egid = BPF_CORE_READ(c, egid.val);
	o->suid = BPF_CORE_READ(c, suid.val);
	o->sgid = BPF_CORE_READ(c, sgid.val);
	o->fsuid = BPF_CORE_READ(c, fsuid.val);
	o->fsgid = BPF_CORE_READ(c, fsgid.val);
	o->securebits = BPF_CORE_READ(c, securebits);
	o->userns_level = BPF_CORE_READ(ns, level);
	o->userns_uid = BPF_CORE_READ(ns, owner.val);
	o->userns_gid = BPF_CORE_READ(ns, group.val);
	o->userns_inum = BPF_CORE_READ(ns, ns.inum);
	o->pad = 0;
	/* kernel_cap_t is u32[2] before 6.3 and one u64 after; both are 8 bytes. */
	bpf_probe_read_kernel(&o->cap_permitted, 8, &c->cap_permitted);
	bpf_probe_read_kernel(&o->cap_effective, 8, &c->cap_effective);
	bpf_probe_read_kernel(&o->cap_inheritable, 8, &c->cap_inheritable);
	return sizeof(*o);
}

#define IPPROTO_TCP_NR 6
#define IPPROTO_UDP_NR 17

static __always_inline __u32 put_skb(struct generic_scratch *s, __u32 off, struct sk_buff *skb)
{
	struct tetra_arg_skb *o = (struct tetra_arg_skb *)&s->data[off & DATA_MASK];
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header), th = BPF_CORE_READ(skb, transport_header);
	__u8 version = 0;
	__u32 l4 = 0;

	__builtin_memset(o, 0, sizeof(*o));
	o->hash = BPF_CORE_READ(skb, hash);
	o->len = BPF_CORE_READ(skb, len);
	o->priority = BPF_CORE_READ(skb, priority);
	o->mark = BPF_CORE_READ(skb, mark);
	/* Raw header bytes: IPv4 ihl/version 0, protocol 9, addresses 12 and 16; IPv6
	 * next header 6, addresses 8 and 24. */
	__u8 *ip = s->raw;

	bpf_probe_read_kernel(ip, 40, head + nh);
	version = ip[0] >> 4;
	if (version == 4) {
		o->family = AF_INET;
		o->proto = ip[9];
		__builtin_memcpy(o->saddr, &ip[12], 4);
		__builtin_memcpy(o->daddr, &ip[16], 4);
		l4 = nh + (ip[0] & 0xf) * 4;
	} else if (version == 6) {
		o->family = AF_INET6;
		o->proto = ip[6];
		__builtin_memcpy(o->saddr, &ip[8], 16);
		__builtin_memcpy(o->daddr, &ip[24], 16);
		l4 = nh + 40;
	}
	/* The transport header offset when set (0xffff: not yet), else right after IP. */
	if (th != 0xffff && th > nh)
		l4 = th;
	if (l4 && (o->proto == IPPROTO_TCP_NR || o->proto == IPPROTO_UDP_NR)) {
		__be16 *ports = (__be16 *)s->raw; /* the IP header is parsed by now */

		ports[0] = ports[1] = 0;
		bpf_probe_read_kernel(ports, 4, head + l4);
		o->sport = bpf_ntohs(ports[0]);
		o->dport = bpf_ntohs(ports[1]);
	}
	return sizeof(*o);
}

/* Members this vmlinux.h lacks: they exist only with CONFIG_MODULE_SIG, and struct
 * load_info is private to kernel/module. CO-RE matches them by name in the kernel's BTF. */
struct module___sig {
	bool sig_ok;
} __attribute__((preserve_access_index));

struct load_info___tetra {
	const char *name;
	struct module *mod;
} __attribute__((preserve_access_index));

struct load_info___sig {
	bool sig_ok;
} __attribute__((preserve_access_index));

static __always_inline void read_name(char *dst, __u32 size, const void *src)
{
	if (bpf_probe_read_kernel_str(dst, size, src) < 0)
		dst[0] = 0;
}

static __always_inline __u32 put_module(struct tetra_arg_module *o, struct module *mod,
					const char *name, __u32 sig_ok)
{
	__builtin_memset(o, 0, sizeof(*o));
	read_name(o->name, sizeof(o->name), name);
	o->taints = BPF_CORE_READ(mod, taints);
	o->sig_ok = sig_ok;
	return sizeof(*o);
}

/*
 * A kernel object recorded as a struct of its own (bpf_attr, perf_event, bpf_map,
 * user_namespace, module, load_info) at `off` of the scratch data; returns its length. A
 * global function: inlined into every argument slot, these reads would grow the entry
 * program's frame, which 6.1 limits with the rest of the call chain to 512 bytes.
 */
__noinline int put_object(__u32 reader, __u64 raw, __u32 off)
{
	struct generic_scratch *s = scratch_value();

	if (!s || !raw)
		return 0;
	void *dst = &s->data[bound(off, DATA_MASK)];

	switch (reader) {
	case READ_BPF_ATTR: {
		struct tetra_arg_bpf_attr *o = dst;
		union bpf_attr *a = (union bpf_attr *)raw;

		__builtin_memset(o, 0, sizeof(*o));
		o->prog_type = BPF_CORE_READ(a, prog_type);
		o->insn_cnt = BPF_CORE_READ(a, insn_cnt);
		bpf_probe_read_kernel(o->prog_name, sizeof(o->prog_name), &a->prog_name);
		return sizeof(*o);
	}
	case READ_PERF_EVENT: {
		struct tetra_arg_perf_event *o = dst;
		struct perf_event *e = (struct perf_event *)raw;
		const char *func = (const char *)BPF_CORE_READ(e, attr.kprobe_func);

		__builtin_memset(o, 0, sizeof(*o));
		o->type = BPF_CORE_READ(e, attr.type);
		o->config = BPF_CORE_READ(e, attr.config);
		o->probe_offset = BPF_CORE_READ(e, attr.probe_offset);
		/* The attr is the caller's copy; kprobe_func still points into its memory. */
		if (func && bpf_probe_read_user_str(o->kprobe_func, sizeof(o->kprobe_func), func) < 0)
			read_name(o->kprobe_func, sizeof(o->kprobe_func), func);
		return sizeof(*o);
	}
	case READ_BPF_MAP: {
		struct tetra_arg_bpf_map *o = dst;
		struct bpf_map *m = (struct bpf_map *)raw;

		__builtin_memset(o, 0, sizeof(*o));
		o->map_type = BPF_CORE_READ(m, map_type);
		o->key_size = BPF_CORE_READ(m, key_size);
		o->value_size = BPF_CORE_READ(m, value_size);
		o->max_entries = BPF_CORE_READ(m, max_entries);
		bpf_probe_read_kernel(o->name, sizeof(o->name), &m->name);
		return sizeof(*o);
	}
	case READ_USER_NS: {
		struct tetra_arg_user_ns *o = dst;
		struct user_namespace *ns = (struct user_namespace *)raw;

		o->level = BPF_CORE_READ(ns, level);
		o->uid = BPF_CORE_READ(ns, owner.val);
		o->gid = BPF_CORE_READ(ns, group.val);
		o->inum = BPF_CORE_READ(ns, ns.inum);
		return sizeof(*o);
	}
	case READ_MODULE: {
		struct module *mod = (struct module *)raw;
		__u32 sig = TETRA_MODULE_SIG_UNKNOWN;

		if (bpf_core_field_exists(struct module___sig, sig_ok))
			sig = BPF_CORE_READ((struct module___sig *)mod, sig_ok);
		return put_module(dst, mod, mod->name, sig);
	}
	case READ_LOAD_INFO: {
		struct load_info___tetra *info = (struct load_info___tetra *)raw;
		__u32 sig = TETRA_MODULE_SIG_UNKNOWN;

		/* Without the type (no CONFIG_MODULES) the reads below would not relocate. */
		if (!bpf_core_type_exists(struct load_info___tetra))
			return 0;
		if (bpf_core_field_exists(struct load_info___sig, sig_ok))
			sig = BPF_CORE_READ((struct load_info___sig *)info, sig_ok);
		return put_module(dst, BPF_CORE_READ(info, mod), BPF_CORE_READ(info, name), sig);
	}
	default:
		return 0;
	}
}

/* The argument kind of each reader put_object handles. */
static __always_inline __u8 object_kind(__u32 reader)
{
	switch (reader) {
	case READ_BPF_ATTR: return TETRA_ARG_BPF_ATTR;
	case READ_PERF_EVENT: return TETRA_ARG_PERF_EVENT;
	case READ_BPF_MAP: return TETRA_ARG_BPF_MAP;
	case READ_USER_NS: return TETRA_ARG_USER_NS;
	default: return TETRA_ARG_MODULE;
	}
}

/*
 * The path of a followed fd (FollowFD) at `off`; marks the call unfollowed when the
 * process has not opened the fd under a FollowFD selector.
 */
static __always_inline __u32 put_followed_fd(struct generic_scratch *s, __u32 off, __u64 fd,
					     __u8 *flags, __u32 *mode)
{
	struct fd_value *v;

	s->fkey.tgid = bpf_get_current_pid_tgid() >> 32;
	s->fkey.fd = fd;
	v = bpf_map_lookup_elem(&fd_follow, &s->fkey);
	if (!v) {
		s->unfollowed = 1;
		return 0;
	}
	__u32 len = v->len > STR_MAX ? STR_MAX : v->len;

	*mode = v->mode;
	if (bpf_probe_read_kernel(&s->data[off & DATA_MASK], len & (STR_MAX * 2 - 1), v->path) < 0) {
		*flags |= TETRA_ARG_READ_ERROR;
		return 0;
	}
	return len;
}

/*
 * Records slot `i` (an argument, or RET_SLOT) whose raw value is `raw`, read as `reader`,
 * at `off`; returns the new offset. Integer values go to s->ival[i]; byte values are at
 * s->voff[i], s->vlen[i] bytes, for the selectors. `size` is a char_buf's byte count
 * or a char_iovec's iovec count; `limit` bounds the bytes of a char_iovec.
 */
static __always_inline __u32 record_value(struct generic_scratch *s, int i, __u32 reader,
					  __u64 raw, __u64 size, bool sized, __u64 limit,
					  __u32 off)
{
	__u32 voff = off + sizeof(struct tetra_generic_arg);
	__u32 len = 0, aux = 0;
	__u8 kind = TETRA_ARG_BYTES, flags = 0;

	if (off > TETRA_GENERIC_DATA_MAX - ARG_RECORD_MAX)
		return off; /* cannot happen with 5 * ARG_RECORD_MAX + 16 < DATA_MAX; keeps bounds */
	switch (reader) {
	case READ_U64: case READ_S32: case READ_U32: case READ_S16: case READ_U16:
	case READ_S8: case READ_U8:
		kind = TETRA_ARG_INT;
		raw = extend(reader, raw);
		s->ival[i & SLOT_MASK] = raw;
		__builtin_memcpy(&s->data[voff & DATA_MASK], &raw, 8);
		len = 8;
		break;
	case READ_STRING:
		len = put_string(s, voff, (const void *)raw, false, &flags);
		break;
	case READ_FILENAME:
		len = put_string(s, voff, BPF_CORE_READ((struct filename *)raw, name), true, &flags);
		break;
	case READ_CHAR_BUF:
		if (sized && (cfg.max_data & (1 << i))) {
			kind = TETRA_ARG_DATA;
			len = put_data(s, voff, (const void *)raw, size, &flags);
		} else if (!sized)
			len = put_string(s, voff, (const void *)raw, false, &flags);
		else
			len = put_bytes(s, voff, (const void *)raw, size, &flags, &aux);
		break;
	case READ_IOVEC:
		len = put_iovec(s, voff, (const void *)raw, size, limit, &flags, &aux);
		break;
	case READ_FD:
		kind = TETRA_ARG_PATH;
		s->ival[i & SLOT_MASK] = raw;
		if (cfg.follow_fd)
			len = put_followed_fd(s, voff, raw, &flags, &aux);
		else
			len = put_file(s, voff, fd_file(raw), &flags, &aux);
		break;
	case READ_FILE:
		kind = TETRA_ARG_PATH;
		len = put_file(s, voff, (struct file *)raw, &flags, &aux);
		break;
	case READ_BINPRM:
		kind = TETRA_ARG_PATH;
		len = put_file(s, voff, BPF_CORE_READ((struct linux_binprm *)raw, file), &flags,
			       &aux);
		break;
	case READ_PATH: {
		struct path *p = (struct path *)raw;

		kind = TETRA_ARG_PATH;
		aux = BPF_CORE_READ(p, dentry, d_inode, i_mode);
		len = put_path(s, voff, BPF_CORE_READ(p, dentry), BPF_CORE_READ(p, mnt), &flags);
		break;
	}
	case READ_SOCK:
		kind = TETRA_ARG_SOCK;
		s->ival[i & SLOT_MASK] = raw; /* the socket's identity for TrackSock */
		len = put_sock(s, voff, (struct sock *)raw);
		break;
	case READ_SOCKADDR:
		kind = TETRA_ARG_SOCKADDR;
		len = put_sockaddr(s, voff, (const void *)raw, &flags);
		break;
	case READ_CRED:
		kind = TETRA_ARG_CRED;
		len = put_cred(s, voff, (const struct cred *)raw);
		break;
	case READ_CAPS: {
		__u64 caps = 0;

		kind = TETRA_ARG_INT;
		if (bpf_probe_read_kernel(&caps, 8, (const void *)raw) < 0)
			flags |= TETRA_ARG_READ_ERROR;
		s->ival[i] = caps;
		__builtin_memcpy(&s->data[voff & DATA_MASK], &caps, 8);
		len = 8;
		break;
	}
	case READ_SKB:
		kind = TETRA_ARG_SKB;
		len = put_skb(s, voff, (struct sk_buff *)raw);
		break;
	case READ_NOP:
		kind = TETRA_ARG_NONE;
		break;
	case READ_DENTRY: {
		struct dentry *d = (struct dentry *)raw;

		kind = TETRA_ARG_PATH;
		aux = BPF_CORE_READ(d, d_inode, i_mode);
		len = put_path(s, voff, d, NULL, &flags);
		break;
	}
	case READ_KIOCB:
		kind = TETRA_ARG_PATH;
		len = put_file(s, voff, BPF_CORE_READ((struct kiocb *)raw, ki_filp), &flags, &aux);
		break;
	case READ_NET_DEVICE:
		len = put_string(s, voff, ((struct net_device *)raw)->name, true, &flags);
		break;
	case READ_BPF_ATTR: case READ_PERF_EVENT: case READ_BPF_MAP: case READ_USER_NS:
	case READ_MODULE: case READ_LOAD_INFO:
		kind = object_kind(reader);
		/* A global function's result has no known bound; the structs are < 256 bytes. */
		len = bound(put_object(reader, raw, voff), 255);
		if (!len)
			flags |= TETRA_ARG_READ_ERROR;
		break;
	default:
		kind = TETRA_ARG_NONE;
		flags |= TETRA_ARG_READ_ERROR;
		break;
	}
	if (!len && kind != TETRA_ARG_NONE && (flags & TETRA_ARG_READ_ERROR))
		kind = TETRA_ARG_NONE;
	struct tetra_generic_arg *h = arg_header(s, off);

	h->len = len;
	h->kind = kind;
	h->flags = flags;
	h->aux = aux;
	s->voff[i & SLOT_MASK] = voff;
	s->vlen[i & SLOT_MASK] = len;
	s->vkind[i & SLOT_MASK] = kind;
	s->vaux[i & SLOT_MASK] = aux;
	if (kind == TETRA_ARG_DATA) { /* selectors see the inline bytes */
		s->voff[i & SLOT_MASK] = voff + sizeof(struct tetra_arg_data);
		s->vlen[i & SLOT_MASK] = len - sizeof(struct tetra_arg_data);
		s->vkind[i & SLOT_MASK] = TETRA_ARG_BYTES;
	}
	return voff + len;
}

/* Reads argument `i` of the call and records it at `off`; returns the new offset. */
static __always_inline __u32 record_arg(void *ctx, int src, struct generic_scratch *s, int i,
					__u32 off)
{
	__u64 raw = raw_arg(ctx, src, cfg.arg_pos[i], cfg.arg_size[i]);
	__u32 sp = cfg.size_pos[i];
	__u64 size = sp ? raw_arg(ctx, src, sp - 1, cfg.size_size[i]) : 0;

	/* Read at return, or sent before the event (maxData): the address and size for later. */
	if ((cfg.return_copy | cfg.max_data) & (1 << i)) {
		s->rptr[i] = raw;
		s->rsize[i] = size;
	}
	if (cfg.return_copy & (1 << i))
		return record_value(s, i, READ_CHAR_BUF, raw, 0, true, 0, off); /* a placeholder */
	return record_value(s, i, cfg.arg_reader[i], raw, size, sp != 0, (__u64)-1, off);
}

#endif
