/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Includes and small helpers shared by every program family. */
#ifndef TETRA_COMMON_H
#define TETRA_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "tetra_abi.h"

/* One ring buffer carries every message to user space; its size is set before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* Events the kernel side could not deliver, by cause (enum tetra_drop). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TETRA_DROP_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/*
 * The executable of each process, for matchBinaries: the path given to execve, as events
 * show it in process.binary. The lifecycle programs write it at exec (a relative path is
 * not stored), copy it to a forked child and delete it at exit; user space seeds it for
 * processes older than the agent. The policy programs share it by fd, and for a process
 * without an entry use the path of the mapped executable (and store that). Every writer
 * zero-fills the path's first BIN_MAX bytes after the string: they are a binary_ids key.
 */
#define BIN_MAX 256

struct binary_entry {
	__u32 len;
	/* The path's binary_ids number (0: no policy names it) as of generation `gen` of
	 * that map: resolve_binary_id() looks it up again when the map has changed since. */
	__u32 id;
	__u32 gen;
	__u32 pad;
	char path[BIN_MAX * 2];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct binary_entry);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} binaries SEC(".maps");

/*
 * matchBinaries In/NotIn by number: every path such a filter names, zero-padded to
 * BIN_MAX bytes -> a number user space gives it (never reused while the agent runs). A
 * hook's filter then holds the numbers of its paths (int_set), and testing a process costs
 * one lookup of its number, not a string key built per call. The exec program looks the
 * number up once per exec; binary_ids_gen[0] counts the changes of binary_ids (user space
 * adds paths first, then increments it), so a number found before a change is looked up
 * again (processes older than the policy, or than the agent: their entries have gen 0).
 */
#define BINARY_IDS_MAX 4096

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BINARY_IDS_MAX);
	__uint(key_size, BIN_MAX);
	__uint(value_size, sizeof(__u32));
	__uint(map_flags, BPF_F_NO_PREALLOC);
} binary_ids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} binary_ids_gen SEC(".maps");

/* Brings e->id up to date with binary_ids (a no-op unless the map changed since). */
static __always_inline void resolve_binary_id(struct binary_entry *e)
{
	__u32 zero = 0;
	__u32 *gen = bpf_map_lookup_elem(&binary_ids_gen, &zero);

	if (!gen || e->gen == *gen)
		return;
	/* The generation is read before the lookup: a path added meanwhile comes with a
	 * newer generation, which makes the next call look again. */
	__u32 g = *gen;
	__u32 *id = bpf_map_lookup_elem(&binary_ids, e->path);

	e->id = id ? *id : 0;
	e->gen = g;
}

/*
 * What each process had at exec, for matchNamespaceChanges/matchCapabilityChanges: its
 * namespaces (encoding.rs numbering, Uts 0 .. User 9) and capability sets. Written by the
 * lifecycle programs at exec, copied to a forked child, deleted at exit; a policy program
 * whose change selector matches records the current values (the change is reported once).
 * Shared by fd like binaries; processes older than the agent have no entry and never match.
 */
struct exec_state {
	__u32 ns[TETRA_NS_COUNT];
	__u32 pad[2];
	/* effective, inheritable, permitted (the selectors' set numbers); [3] unused, so a
	 * 2-bit set number stays inside */
	__u64 caps[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct exec_state);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} exec_states SEC(".maps");

static __always_inline void count_drop(__u32 cause)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &cause);

	if (n)
		*n += 1;
}

/* Sends `size` bytes of `msg`; a full ring buffer is counted, never silent. */
static __always_inline void submit(void *msg, __u64 size, __u32 drop_cause)
{
	if (bpf_ringbuf_output(&events, msg, size, 0) < 0)
		count_drop(drop_cause);
}

#endif
