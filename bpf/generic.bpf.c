// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Generic policy hooks. User space opens this object once per hook of a TracingPolicy,
 * enables the one entry program matching the hook's kind, writes the hook's configuration
 * (struct generic_config in .rodata) before load and its selector blob and value maps
 * after, then attaches. Every entry program runs the same body: evaluate the selectors'
 * filters on the task, read the arguments (unless no selector can match), evaluate the
 * argument filters, act (signal, override, follow fds), and post the
 * event to the shared ring buffer unless no selector matched or the action says NoPost.
 * A hook with a return probe (return: true, or a returnCopy argument) instead leaves the
 * recorded call in its stash map; its return program adds the return value, evaluates
 * matchReturnArgs/matchReturnActions of the selector the entry matched, and posts.
 */
#include "lib/common.h"
#include "lib/path.h"
#include "lib/generic.h"
#include "lib/args.h"
#include "lib/selectors.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Cgroup ids (v2) of the containers a pod-scoped policy applies to (namespaced policy,
 * podSelector, containerSelector); user space shares one map between a policy's hooks and
 * keeps it in step with the pods. Read only when cfg.cgroup_filter is set.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, __u8);
} policy_cgroups SEC(".maps");

/*
 * What this hook's selectors did, per selector, for ListTracingPolicies: entry
 * `selector * ACTION_COUNTERS + counter`, counters in the order of
 * TracingPolicyActionCounters (agent/src/sensors/generic/mod.rs reads them).
 */
#define ACTION_COUNTERS 11
#define COUNT_POST 0
#define COUNT_SIGNAL 1
#define COUNT_MONITOR_SIGNAL 2
#define COUNT_OVERRIDE 3
#define COUNT_MONITOR_OVERRIDE 4
#define COUNT_NOPOST 9
#define COUNT_RATE_LIMITED 10 /* not in TracingPolicyActionCounters: agent stats and metrics */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SELECTORS * ACTION_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} action_counts SEC(".maps");

static __always_inline void count_action(__u32 selector, __u32 counter)
{
	__u32 key = selector * ACTION_COUNTERS + counter;
	__u64 *n = bpf_map_lookup_elem(&action_counts, &key);

	if (n)
		*n += 1;
}

struct action_result {
	bool post;
	__u32 action;
	__s64 retval;
	bool override;
	__u32 stack; /* STACK_KERNEL | STACK_USER */
};

/* FollowFD: remember the path recorded in `name_slot` for the fd in `fd_slot`. */
static __always_inline void follow_fd(struct generic_scratch *s, __u32 tgid, __u32 fd_slot,
				      __u32 name_slot)
{
	__u32 len = s->vlen[name_slot & SLOT_MASK];

	if (s->vkind[name_slot & SLOT_MASK] != TETRA_ARG_PATH &&
	    s->vkind[name_slot & SLOT_MASK] != TETRA_ARG_BYTES)
		return;
	if (len > STR_MAX)
		len = STR_MAX;
	s->fkey.tgid = tgid;
	s->fkey.fd = s->ival[fd_slot & SLOT_MASK];
	s->fval.len = len;
	s->fval.mode = s->vaux[name_slot & SLOT_MASK];
	bpf_probe_read_kernel(s->fval.path, len & (STR_MAX * 2 - 1),
			      &s->data[s->voff[name_slot & SLOT_MASK] & DATA_MASK]);
	if (bpf_map_update_elem(&fd_follow, &s->fkey, &s->fval, BPF_ANY) < 0)
		count_drop(TETRA_DROP_FOLLOW_FD_FULL);
}

/* CopyFD: the fd in `new_slot` follows what the fd in `old_slot` follows. */
static __always_inline void copy_fd(struct generic_scratch *s, __u32 tgid, __u32 old_slot,
				    __u32 new_slot)
{
	struct fd_value *v;

	s->fkey.tgid = tgid;
	s->fkey.fd = s->ival[old_slot & SLOT_MASK];
	v = bpf_map_lookup_elem(&fd_follow, &s->fkey);
	if (!v)
		return;
	s->fkey.fd = s->ival[new_slot & SLOT_MASK];
	if (bpf_map_update_elem(&fd_follow, &s->fkey, v, BPF_ANY) < 0)
		count_drop(TETRA_DROP_FOLLOW_FD_FULL);
}

/* TrackSock of the sock pointer `sk` for `owner` (a pid_tgid), or UntrackSock (owner 0). */
static __always_inline void track_sock(struct generic_scratch *s, __u64 sk, __u64 owner)
{
	if (!sk)
		return;
	s->sock_key = sk;
	s->sock_val = owner;
	if (owner)
		bpf_map_update_elem(&sock_owner, &s->sock_key, &s->sock_val, BPF_ANY);
	else
		bpf_map_delete_elem(&sock_owner, &s->sock_key);
}

/*
 * Attributes the event to the owner of the first tracked sock among slots `first` to
 * `end - 1` (s->owner; left 0 when none is tracked). A global function, like run_actions,
 * so the entry program's frame does not grow.
 */
__noinline int find_sock_owner(__u32 first, __u32 end)
{
	struct generic_scratch *s = scratch_value();

	if (!s)
		return 0;
	for (__u32 i = 0; i <= RET_SLOT; i++) {
		if (i < first || i >= end || s->owner)
			continue;
		if (s->vkind[i] != TETRA_ARG_SOCK)
			continue;
		s->sock_key = s->ival[i];
		__u64 *owner = bpf_map_lookup_elem(&sock_owner, &s->sock_key);

		if (owner)
			s->owner = *owner;
	}
	return 0;
}

/*
 * Runs the matched selector's actions (the blob's action section at `off`). A global
 * function: inlined, its registers spilled into the entry program's frame, which with the
 * selector calls went past the 512 bytes 6.1 allows a call chain. As in selectors.h, the
 * scratch is looked up again so its parts stay valid map keys before 6.2.
 */
__noinline int run_actions(const struct blob *b, __u32 off, __u32 selector, __u64 pid_tgid,
			   struct action_result *r)
{
	struct generic_scratch *s = scratch_value();

	if (!s || !b || !r)
		return 0;
	__u32 count = rd32(b, off + 4);
	__u32 p = off + 8;
	__u32 tgid = pid_tgid >> 32;

	for (__u32 i = 0; i < MAX_ACTIONS && i < count; i++) {
		__u32 code = rd32(b, p), n = rd32(b, p + 4);
		__u64 param = n ? rd64(b, p + 8) : 0;
		__u32 param2 = n > 1 ? rd32(b, p + 16) : 0;
		__u32 param3 = n > 2 ? rd32(b, p + 24) : 0;

		p += 8 + (n & 7) * 8;
		switch (code) {
		case ACT_NOPOST:
			r->post = false;
			count_action(selector, COUNT_NOPOST);
			break;
		case ACT_SIGKILL:
			r->action = ACT_SIGKILL;
			if (!cfg.monitor_only)
				bpf_send_signal(9);
			count_action(selector, cfg.monitor_only ? COUNT_MONITOR_SIGNAL : COUNT_SIGNAL);
			break;
		case ACT_SIGNAL:
			r->action = ACT_SIGNAL;
			if (!cfg.monitor_only)
				bpf_send_signal(param);
			count_action(selector, cfg.monitor_only ? COUNT_MONITOR_SIGNAL : COUNT_SIGNAL);
			break;
		case ACT_OVERRIDE:
			r->action = ACT_OVERRIDE;
			r->retval = (__s64)param;
			r->override = !cfg.monitor_only;
			count_action(selector, cfg.monitor_only ? COUNT_MONITOR_OVERRIDE : COUNT_OVERRIDE);
			break;
		case ACT_POST:
			/* Params: rate limit in ms (0: none), scope, stack traces. */
			if (param && n > 1 && rate_limited(selector, param2, param, pid_tgid)) {
				r->post = false;
				count_action(selector, COUNT_RATE_LIMITED);
			}
			r->stack = param3;
			break;
		case ACT_FOLLOWFD:
			follow_fd(s, tgid, param, param2);
			break;
		case ACT_UNFOLLOWFD:
			s->fkey.tgid = tgid;
			s->fkey.fd = s->ival[param & SLOT_MASK];
			bpf_map_delete_elem(&fd_follow, &s->fkey);
			break;
		case ACT_COPYFD:
			copy_fd(s, tgid, param, param2);
			break;
		/* Run by user space when the event arrives; the event says which. */
		case ACT_GETURL:
		case ACT_DNSLOOKUP:
			r->action = code;
			break;
		/* The action's socket is the current process's from now on (or no one's). */
		case ACT_TRACKSOCK:
		case ACT_UNTRACKSOCK:
			if (s->vkind[param & SLOT_MASK] == TETRA_ARG_SOCK)
				track_sock(s, s->ival[param & SLOT_MASK],
					   code == ACT_TRACKSOCK ? pid_tgid : 0);
			break;
		default:
			break; /* user space refuses actions the kernel does not run */
		}
	}
	return 0;
}

/*
 * Kernel and user stack traces after the `off` bytes of arguments, as Post asked
 * (`which`); returns their bytes and sets their lengths in s->msg, which post() zeroes
 * before. Not inlined: its frame stays out of the entry program's.
 */
static __noinline __u32 record_stacks(void *ctx, struct generic_scratch *s, __u32 off,
				      __u32 which)
{
	long kernel = 0, user = 0;

	if (off > TETRA_GENERIC_DATA_MAX)
		return 0;
	if (which & STACK_KERNEL)
		kernel = bpf_get_stack(ctx, &s->data[off & DATA_MASK], TETRA_STACK_MAX, 0);
	if (kernel < 0 || kernel > TETRA_STACK_MAX)
		kernel = 0;
	if (which & STACK_USER)
		user = bpf_get_stack(ctx, &s->data[(off + kernel) & DATA_MASK], TETRA_STACK_MAX,
				     BPF_F_USER_STACK);
	if (user < 0 || user > TETRA_STACK_MAX)
		user = 0;
	s->msg.kernel_stack_len = kernel;
	s->msg.user_stack_len = user;
	return kernel + user;
}

/* Data messages per maxData argument: enough for TETRA_DATA_MAX after the inline bytes. */
#define DATA_CHUNKS (TETRA_DATA_MAX / TETRA_DATA_CHUNK)

/*
 * maxData: sends the bytes of the buffer at `ptr` that follow the inline ones of the
 * TETRA_ARG_DATA argument whose header is at s->data[head], and fills in its descriptor.
 * Called right before the event is posted, so the data messages precede it in the ring
 * buffer. The first failure (unreadable memory, ring buffer full) ends the sending; the
 * descriptor says how far it got. A global function: it runs up to DATA_CHUNKS helper
 * rounds, which the verifier then checks once, outside the entry program's frame.
 */
__noinline int send_data(__u64 ptr, __u32 head)
{
	struct generic_scratch *s = scratch_value();
	__u32 zero = 0;
	struct max_data_buf *c = bpf_map_lookup_elem(&data_heap, &zero);

	if (!s || !c)
		return 0;
	struct tetra_generic_arg *h = (struct tetra_generic_arg *)&s->data[head & DATA_MASK];
	struct tetra_arg_data *d = (struct tetra_arg_data *)&s->data[(head + sizeof(*h)) & DATA_MASK];

	if (h->kind != TETRA_ARG_DATA || h->len < sizeof(*d))
		return 0;
	__u64 total = d->size < TETRA_DATA_MAX ? d->size : TETRA_DATA_MAX;
	__u64 pos = h->len - sizeof(*d); /* the inline bytes */
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	long err = 0;

	d->id = bpf_ktime_get_ns();
	c->msg.hdr.op = TETRA_MSG_DATA;
	c->msg.hdr.pad[0] = c->msg.hdr.pad[1] = c->msg.hdr.pad[2] = 0;
	c->msg.hdr.ktime = d->id;
	c->msg.tid = (__u32)pid_tgid;
	c->msg.id = d->id;
	for (int i = 0; i < DATA_CHUNKS; i++) {
		if (pos >= total)
			break;
		__u64 n = total - pos;

		if (n > TETRA_DATA_CHUNK)
			n = TETRA_DATA_CHUNK;
		err = read_any(c->bytes, n, (const void *)(ptr + pos));
		if (err < 0)
			break;
		c->msg.hdr.size = sizeof(c->msg) + n;
		c->msg.offset = pos;
		err = bpf_ringbuf_output(&events, c, sizeof(c->msg) + n, 0);
		if (err < 0) {
			count_drop(TETRA_DROP_RINGBUF_DATA);
			break;
		}
		pos += n;
	}
	d->sent = pos - (h->len - sizeof(*d));
	d->error = err;
	return 0;
}

/* Sends the data of every maxData argument: buffer at s->rptr[i], header at s->aoff[i]. */
static __always_inline void send_max_data(struct generic_scratch *s)
{
	for (int i = 0; i < MAX_SLOTS; i++) {
		if (cfg.max_data & (1 << i))
			send_data(s->rptr[i], s->aoff[i]);
	}
}

/*
 * Sends the message built in s->msg with `args_len` bytes of arguments: first the data
 * messages of its maxData arguments, then the event with the stack traces Post asked for
 * (`stacks`) after the arguments.
 */
static __always_inline void post(void *ctx, struct generic_scratch *s, __u64 pid_tgid,
				 __u32 selector, __u32 action, __s64 retval, __u32 return_action,
				 __u32 n_args, __u32 args_len, __u32 stacks)
{
	struct tetra_msg_generic *m = &s->msg;

	send_max_data(s);
	__u32 size = sizeof(*m) + args_len;

	m->kernel_stack_len = 0;
	m->user_stack_len = 0;
	if (cfg.stack_traces && stacks)
		size += record_stacks(ctx, s, args_len, stacks);

	if (s->owner)
		pid_tgid = s->owner;
	m->hdr.op = TETRA_MSG_GENERIC;
	m->hdr.size = size;
	m->hdr.ktime = bpf_ktime_get_ns();
	m->pid = pid_tgid >> 32;
	m->tid = (__u32)pid_tgid;
	m->policy_id = cfg.policy_id;
	m->hook_id = cfg.hook_id;
	m->selector = selector;
	m->action = action;
	m->retval = action == ACT_OVERRIDE ? retval : 0;
	m->n_args = n_args;
	m->args_len = args_len;
	m->return_action = return_action;
	count_action(selector, COUNT_POST);
	if (size <= sizeof(*m) + TETRA_GENERIC_DATA_MAX + 2 * TETRA_STACK_MAX)
		submit(m, size, TETRA_DROP_RINGBUF_GENERIC);
}

/*
 * Leaves the recorded call for the return program. A full map (calls in flight) loses the
 * call's event, counted.
 */
static __always_inline void stash_call(struct generic_scratch *s, __u64 pid_tgid,
				       __u32 selector, __u32 actions, struct action_result *r)
{
	struct stash *st;

	/* The value is created from the scratch data (the recorded arguments come first). */
	if (bpf_map_update_elem(&stash, &pid_tgid, s->data, BPF_ANY) < 0) {
		count_drop(TETRA_DROP_STASH_FULL);
		return;
	}
	st = bpf_map_lookup_elem(&stash, &pid_tgid);
	if (!st)
		return;
	for (int i = 0; i < MAX_SLOTS; i++) {
		st->rptr[i] = s->rptr[i];
		st->rsize[i] = s->rsize[i];
		st->aoff[i] = s->aoff[i];
	}
	st->selector = selector;
	st->actions = actions;
	st->action = r->action;
	st->post = r->post;
	st->retval = r->retval;
	st->stack = r->stack;
	st->owner = s->owner;
}

/* The integer part of the pre-check for selector `i` (none configured: it holds). */
static __always_inline bool pre_int_holds(void *ctx, const int src, int i)
{
	__u32 slot = cfg.pre_slot[i], op = cfg.pre_op[i], n = cfg.pre_count[i];
	bool sig = is_signed(cfg.pre_type[i]), found = false;

	if (slot >= MAX_SLOTS)
		return true;
	__u64 x = extend(cfg.arg_reader[slot], raw_arg(ctx, src, cfg.arg_pos[slot], cfg.arg_size[slot]));

	for (__u32 j = 0; j < PRE_VALUES; j++) {
		if (j >= n)
			break;
		found |= int_op_holds(op, sig, x, cfg.pre_values[i][j]);
	}
	return op == OP_NOT_EQUAL ? !found : found;
}

/* The binary part for selector `i`: is binary number `id` (0: none) listed, for In, or
 * not listed, for NotIn? As binary_id_listed() decides, without the int_set lookup. */
static __always_inline bool pre_bin_holds(int i, __u32 id)
{
	__u32 op = cfg.pre_bin_op[i], n = cfg.pre_bin_count[i];
	bool found = false;

	if (!op)
		return true;
	for (__u32 j = 0; j < PRE_BIN_VALUES; j++) {
		if (j >= n)
			break;
		found |= id && id == cfg.pre_bin_ids[i][j];
	}
	return op == BIN_IN ? found : !found;
}

/*
 * The pre-check: can some selector match, as far as one integer matchArgs filter and the
 * matchBinaries In/NotIn filter of each say (generic_config.pre_*)? The integers are read
 * straight from the call and the binary's number from the process's binaries entry, and
 * compared with values in .rodata, before the scratch is looked up, so a call it rejects
 * (no selector can match) costs no copy and no selector walk. Unrolled over the
 * selectors: the verifier knows every configuration value and keeps only the comparisons
 * configured.
 */
static __always_inline bool pre_check(void *ctx, const int src, __u32 tgid)
{
	__u32 id = 0;

	if (cfg.pre_binaries) {
		struct binary_entry *e = bpf_map_lookup_elem(&binaries, &tgid);

		if (!e)
			return true; /* not known yet: the full evaluation reads the executable */
		resolve_binary_id(e);
		id = e->id;
	}
#pragma unroll
	for (int i = 0; i < MAX_SELECTORS; i++) {
		if (i >= cfg.pre_selectors)
			break;
		if (pre_int_holds(ctx, src, i) && pre_bin_holds(i, id))
			return true;
	}
	return false;
}

/*
 * The body of every entry program; `src` is a constant, so each program keeps only its own
 * way of reading arguments. Returns the value an LSM program must return.
 */
static __always_inline int generic_event(void *ctx, const int src)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u32 zero = 0;

	if (tgid == cfg.agent_tgid)
		return 0;
	/* Cheapest rejection first: a few loads and compares, at most one map lookup. */
	if (cfg.pre_selectors && !pre_check(ctx, src, tgid))
		return 0;
	if (cfg.cgroup_filter) {
		__u64 cgroup = bpf_get_current_cgroup_id();

		if (!bpf_map_lookup_elem(&policy_cgroups, &cgroup))
			return 0;
	}
	struct generic_scratch *s = bpf_map_lookup_elem(&generic_heap, &zero);
	const struct blob *b = bpf_map_lookup_elem(&filter, &zero);

	if (!s || !b)
		return 0;
	/* The selectors' filters on the task first: no argument is read for a call they reject. */
	__u32 passed = task_selectors(s, b, tgid);

	if (!passed)
		return 0;
	__u32 off = 0;

	s->unfollowed = 0;
	s->owner = 0;
	/* Unrolled: each slot's reader is a load-time constant the verifier prunes on. The
	 * offsets of the arguments a hook does not have are never read. */
	if (cfg.n_args > 0) {
		s->aoff[0] = 0;
		off = record_arg(ctx, src, s, 0, off);
	}
	if (cfg.n_args > 1) {
		s->aoff[1] = off;
		off = record_arg(ctx, src, s, 1, off);
	}
	if (cfg.n_args > 2) {
		s->aoff[2] = off;
		off = record_arg(ctx, src, s, 2, off);
	}
	if (cfg.n_args > 3) {
		s->aoff[3] = off;
		off = record_arg(ctx, src, s, 3, off);
	}
	if (cfg.n_args > 4) {
		s->aoff[4] = off;
		off = record_arg(ctx, src, s, 4, off);
	}
	if (s->unfollowed)
		return 0;

	__u32 actions = 0;
	__u32 selector = match_selectors(s, b, passed, &actions);

	if (selector == (__u32)-1)
		return 0;
	if (cfg.sock_track)
		find_sock_owner(0, cfg.n_args);
	struct action_result r = { .post = true, .action = ACT_POST };

	if (actions && rd32(b, actions + 4)) /* a section's count: no call for none */
		run_actions(b, actions, selector, pid_tgid, &r);
	if (src == SRC_KPROBE && r.override && cfg.can_override)
		bpf_override_return(ctx, r.retval);
	if (cfg.has_return)
		stash_call(s, pid_tgid, selector, actions, &r);
	else if (r.post)
		post(ctx, s, pid_tgid, selector, r.action, r.retval, 0, cfg.n_args, off, r.stack);
	return r.override ? (int)r.retval : 0;
}

/*
 * Argument `i` of a stashed call into the message at `out`: a returnCopy buffer is read
 * now, `ret` bytes of it; any other argument is copied as the entry recorded it.
 */
static __always_inline __u32 restore_arg(struct generic_scratch *s, struct stash *st, int i,
					 __s64 ret, __u32 out)
{
	__u64 got = ret > 0 ? ret : 0;

	if ((cfg.return_copy & (1 << i)) && cfg.arg_reader[i] == READ_IOVEC)
		return record_value(s, i, READ_IOVEC, st->rptr[i], st->rsize[i], true, got, out);
	if (cfg.return_copy & (1 << i))
		return record_value(s, i, READ_CHAR_BUF, st->rptr[i], got, true, 0, out);
	if (out > TETRA_GENERIC_DATA_MAX - ARG_RECORD_MAX)
		return out;
	/* The source is in the stash at an offset the entry program computed: read it with a
	 * probe, which only the destination's bounds concern. */
	const __u8 *from = (const __u8 *)((unsigned long)st->data + (st->aoff[i] & DATA_MASK));
	struct tetra_generic_arg h = {};

	if (bpf_probe_read_kernel(&h, sizeof(h), from) < 0)
		return out;
	__u32 len = h.len > ARG_RECORD_MAX - sizeof(h) ? ARG_RECORD_MAX - sizeof(h) : h.len;

	bpf_probe_read_kernel(&s->data[out & DATA_MASK],
			      (sizeof(h) + len) & (STR_MAX * 2 - 1), from);
	return out + sizeof(h) + len;
}

/*
 * The body of every return program: completes the call its entry program stashed, `ret`
 * being what the function returned (`ctx` is the program's, for stack traces).
 */
static __always_inline void generic_return(void *ctx, __s64 ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 zero = 0;
	struct generic_scratch *s = bpf_map_lookup_elem(&generic_heap, &zero);
	const struct blob *b = bpf_map_lookup_elem(&filter, &zero);
	struct stash *st = bpf_map_lookup_elem(&stash, &pid_tgid);

	if (!s || !b || !st)
		return;
	__u32 out = 0, n_args = cfg.n_args;

	/* s->aoff: where each argument lands in this message, for send_max_data. */
	s->aoff[0] = out;
	if (cfg.n_args > 0)
		out = restore_arg(s, st, 0, ret, out);
	s->aoff[1] = out;
	if (cfg.n_args > 1)
		out = restore_arg(s, st, 1, ret, out);
	s->aoff[2] = out;
	if (cfg.n_args > 2)
		out = restore_arg(s, st, 2, ret, out);
	s->aoff[3] = out;
	if (cfg.n_args > 3)
		out = restore_arg(s, st, 3, ret, out);
	s->aoff[4] = out;
	if (cfg.n_args > 4)
		out = restore_arg(s, st, 4, ret, out);
	s->owner = st->owner;
	if (cfg.ret_reader) {
		out = record_value(s, RET_SLOT, cfg.ret_reader, ret, 0, false, 0, out);
		n_args++;
	}
	/*
	 * returnArgAction: the returned socket is new, so it belongs to the process the call
	 * is attributed to (an accepted connection made in softirq from a tracked listener is
	 * the listener's owner's). Any other returned sock may be tracked already.
	 */
	if (cfg.ret_sock_action == ACT_TRACKSOCK)
		track_sock(s, ret, s->owner ? s->owner : pid_tgid);
	else if (cfg.ret_sock_action == ACT_UNTRACKSOCK)
		track_sock(s, ret, 0);
	else if (cfg.sock_track && cfg.ret_reader == READ_SOCK)
		find_sock_owner(RET_SLOT, RET_SLOT + 1);
	for (int i = 0; i < MAX_SLOTS; i++) /* the stash entry goes before the event is sent */
		s->rptr[i] = st->rptr[i];
	/* r.action: what the return actions do (Post unless they signal). */
	struct action_result r = { .post = st->post, .action = ACT_POST };
	__u32 selector = st->selector, actions = st->actions, action = st->action;
	__u32 stack = st->stack;
	__s64 retval = st->retval;

	bpf_map_delete_elem(&stash, &pid_tgid);
	if (actions) {
		__u32 ret_args = skip(b, actions);

		if (!match_arg_filters(s, b, ret_args))
			return;
		if (rd32(b, skip(b, ret_args) + 4))
			run_actions(b, skip(b, ret_args), selector, pid_tgid, &r);
	}
	if (r.post)
		post(ctx, s, pid_tgid, selector, action, retval, r.action, n_args, out, stack);
}

SEC("kprobe")
int generic_kprobe(struct pt_regs *ctx)
{
	generic_event(ctx, SRC_KPROBE);
	return 0;
}

SEC("kretprobe")
int generic_kretprobe(struct pt_regs *ctx)
{
	generic_return(ctx, PT_REGS_RC_CORE(ctx));
	return 0;
}

SEC("tracepoint")
int generic_tracepoint(void *ctx)
{
	generic_event(ctx, SRC_TRACEPOINT);
	return 0;
}

SEC("raw_tp")
int generic_raw_tp(void *ctx)
{
	generic_event(ctx, SRC_BTF);
	return 0;
}

SEC("tp_btf")
int generic_tp_btf(void *ctx)
{
	generic_event(ctx, SRC_BTF);
	return 0;
}

SEC("fentry")
int generic_fentry(void *ctx)
{
	generic_event(ctx, SRC_BTF);
	return 0;
}

/* The return program of an fentry hook with `return: true` (or a returnCopy argument). */
SEC("fexit")
int generic_fexit(void *ctx)
{
	__u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	generic_return(ctx, (__s64)ret);
	return 0;
}

/*
 * Override on a security_* function where the kernel has no bpf_override_return: a
 * non-zero return is what the function returns, without running it.
 */
SEC("fmod_ret")
int generic_fmod_ret(void *ctx)
{
	return generic_event(ctx, SRC_BTF);
}

SEC("uprobe")
int generic_uprobe(struct pt_regs *ctx)
{
	generic_event(ctx, SRC_UPROBE);
	return 0;
}

SEC("usdt")
int generic_usdt(struct pt_regs *ctx)
{
	generic_event(ctx, SRC_USDT);
	return 0;
}

SEC("uretprobe")
int generic_uretprobe(struct pt_regs *ctx)
{
	generic_return(ctx, PT_REGS_RC_CORE(ctx));
	return 0;
}

/* Override here is the hook's return value: the operation fails before it happens. */
SEC("lsm")
int generic_lsm(void *ctx)
{
	/*
	 * From 6.12 the verifier holds an LSM program to an errno (-4095..0). The bounds are
	 * checked on the sign-extended value that is returned (an int return lets clang test
	 * one copy and return another, unbounded one).
	 */
	long ret = generic_event(ctx, SRC_BTF);

	if (ret < -4095 || ret > 0)
		ret = -1;
	asm volatile("" : "+r"(ret));
	return ret;
}
