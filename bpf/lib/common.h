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
