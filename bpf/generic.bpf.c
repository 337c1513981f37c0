// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Generic policy hooks. User space opens this object once per hook of a TracingPolicy,
 * enables the one entry program matching the hook's kind, writes the hook's configuration
 * (struct generic_config in .rodata) before load and its selector blob and value maps
 * after, then attaches. Every entry program runs the same body: read the arguments,
 * evaluate the selectors in the kernel, act (signal, override), and post the event to the
 * shared ring buffer unless no selector matched or the action says NoPost.
 */
#include "lib/common.h"
#include "lib/path.h"
#include "lib/generic.h"
#include "lib/args.h"
#include "lib/selectors.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct action_result {
	bool post;
	__u32 action;
	__s64 retval;
	bool override;
};

/* Runs the matched selector's actions (the blob's action section at `off`). */
static __always_inline void run_actions(const struct blob *b, __u32 off, __u32 selector,
					__u64 pid_tgid, struct action_result *r)
{
	__u32 count = rd32(b, off + 4);
	__u32 p = off + 8;

	r->post = true;
	r->action = ACT_POST;
	for (__u32 i = 0; i < MAX_ACTIONS && i < count; i++) {
		__u32 code = rd32(b, p), n = rd32(b, p + 4);
		__u64 param = n ? rd64(b, p + 8) : 0;

		p += 8 + (n & 7) * 8;
		switch (code) {
		case ACT_NOPOST:
			r->post = false;
			break;
		case ACT_SIGKILL:
			r->action = ACT_SIGKILL;
			if (!cfg.monitor_only)
				bpf_send_signal(9);
			break;
		case ACT_SIGNAL:
			r->action = ACT_SIGNAL;
			if (!cfg.monitor_only)
				bpf_send_signal(param);
			break;
		case ACT_OVERRIDE:
			r->action = ACT_OVERRIDE;
			r->retval = (__s64)param;
			r->override = !cfg.monitor_only;
			break;
		case ACT_POST:
			/* Params: rate limit in ms (0: none), scope. */
			if (param && n > 1 && rate_limited(selector, rd32(b, p - 8), param, pid_tgid))
				r->post = false;
			break;
		default:
			break; /* user space refuses actions the kernel does not run */
		}
	}
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
	struct generic_scratch *s = bpf_map_lookup_elem(&generic_heap, &zero);
	const struct blob *b = bpf_map_lookup_elem(&filter, &zero);

	if (!s || !b)
		return 0;
	__u32 off = 0;

	/* Unrolled: each slot's reader is a load-time constant the verifier prunes on. */
	if (cfg.n_args > 0)
		off = record_arg(ctx, src, s, 0, off);
	if (cfg.n_args > 1)
		off = record_arg(ctx, src, s, 1, off);
	if (cfg.n_args > 2)
		off = record_arg(ctx, src, s, 2, off);
	if (cfg.n_args > 3)
		off = record_arg(ctx, src, s, 3, off);
	if (cfg.n_args > 4)
		off = record_arg(ctx, src, s, 4, off);

	__u32 actions = 0;
	__u32 selector = match_selectors(s, b, tgid, &actions);

	if (selector == (__u32)-1)
		return 0;
	struct action_result r = { .post = true, .action = ACT_POST };

	if (actions)
		run_actions(b, actions, selector, pid_tgid, &r);
	if (src == SRC_KPROBE && r.override && cfg.can_override)
		bpf_override_return(ctx, r.retval);
	if (r.post) {
		struct tetra_msg_generic *m = &s->msg;
		__u32 size = sizeof(*m) + off;

		m->hdr.op = TETRA_MSG_GENERIC;
		m->hdr.size = size;
		m->hdr.ktime = bpf_ktime_get_ns();
		m->pid = tgid;
		m->tid = (__u32)pid_tgid;
		m->policy_id = cfg.policy_id;
		m->hook_id = cfg.hook_id;
		m->selector = selector;
		m->action = r.action;
		m->retval = r.action == ACT_OVERRIDE ? r.retval : 0;
		m->n_args = cfg.n_args;
		m->args_len = off;
		if (size <= sizeof(*m) + TETRA_GENERIC_DATA_MAX)
			submit(m, size, TETRA_DROP_RINGBUF_GENERIC);
	}
	return r.override ? (int)r.retval : 0;
}

SEC("kprobe")
int generic_kprobe(struct pt_regs *ctx)
{
	generic_event(ctx, SRC_KPROBE);
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

SEC("uprobe")
int generic_uprobe(struct pt_regs *ctx)
{
	generic_event(ctx, SRC_UPROBE);
	return 0;
}

/* Override here is the hook's return value: the operation fails before it happens. */
SEC("lsm")
int generic_lsm(void *ctx)
{
	return generic_event(ctx, SRC_BTF);
}
